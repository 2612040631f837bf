"""EVA-01 video action recognition in mmaction2.

mmaction2's ``Recognizer3D`` feeds (N * views, C, T, H, W) clips to the shared ``EVAViT``
(``type='mmpretrain.EVAViT'``, ``num_frames=T``: frames share the patch embedding, the
spatial position table is tiled over frames, joint space-time attention over all tokens) and
:class:`EVAVideoHead` classifies its pooled feature. Importing this package registers the
head and the few transforms mmaction2 lacks. ``mmaction.models`` cannot be imported at all
from the mmaction2 1.2.0 wheel (mmaction2#2714): this package supplies the missing module
(:func:`projects.eva.compat.mmaction_drn`, which adds a placeholder and changes nothing that
exists) before it imports mmaction2 -- the one fix that importing a package applies; the
others wait for :func:`projects.eva.compat.apply`.
"""
from ..compat import mmaction_drn

mmaction_drn()  # before anything imports mmaction.models

from ..models import EVAViT  # noqa: E402,F401  (registers EVAViT in mmpretrain)
from .class_mapping import load_class_mapping  # noqa: E402,F401
from .checks import CheckedDecordDecode, CheckedDecordInit, CheckedVideoDataset  # noqa: E402,F401
from .head import EVAVideoHead  # noqa: E402,F401
from .transforms import VideoColorJitter, VideoRandomGrayscale  # noqa: E402,F401
