"""EVA-01 semantic segmentation on mmseg: ViT-Adapter (:class:`EVAAdapter`) with the
half-width deformable attention (:class:`MSDeformAttn`), for mmseg's ``Mask2FormerHead``.
Import it from configs with ``custom_imports=dict(imports=['projects.eva.segmentation'])``.
"""
import mmdet.models  # noqa: F401  (Mask2Former parts used through the ``mmdet.`` scope)

from .. import models  # noqa: F401  (EVAViT in the mmpretrain registry)
from .checks import CheckedLoadAnnotations  # noqa: F401  (label-map errors name the file)
from .adapter import EVAAdapter
from .segmentor import EVAEncoderDecoder
from .hooks import ValBeforeTrainHook
from .ms_deform_attn import MSDeformAttn, ms_deform_attn_core

__all__ = ['EVAAdapter', 'EVAEncoderDecoder', 'MSDeformAttn', 'ms_deform_attn_core', 'ValBeforeTrainHook']
