"""EVA-01 video action recognition in mmaction2.

mmaction2's ``Recognizer3D`` feeds (N * views, C, T, H, W) clips to the shared ``EVAViT``
(``type='mmpretrain.EVAViT'``, ``num_frames=T``: frames share the patch embedding, the
spatial position table is tiled over frames, joint space-time attention over all tokens) and
:class:`EVAVideoHead` classifies its pooled feature. Importing this package registers the
head and the few transforms mmaction2 lacks; ``projects.eva`` (the parent package) has
already applied the stack fixes that ``mmaction.models`` needs.
"""
from ..models import EVAViT  # noqa: F401  (registers EVAViT in mmpretrain)
from .class_mapping import load_class_mapping  # noqa: F401
from .checks import CheckedDecordDecode, CheckedDecordInit, CheckedVideoDataset  # noqa: F401
from .head import EVAVideoHead  # noqa: F401
from .transforms import VideoColorJitter, VideoRandomGrayscale  # noqa: F401
