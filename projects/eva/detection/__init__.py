"""EVA-01 detection and instance segmentation on mmdet (ViTDet-style Cascade Mask R-CNN).

Registers into mmdet's registries: ``LN2d``, ``SimpleFeaturePyramid`` (neck),
``EVACascadeRoIHead`` (probability-averaged cascade scores, maskness), ``FederatedSigmoidCELoss``
(LVIS), ``EVADetDataPreprocessor`` (fixed-size test padding) and ``EVADetTTAModel`` (flip /
multi-scale TTA with masks), ``EVALVISMetric``, ``EVACocoMetric`` (zeros without any
detection). The backbone is ``mmpretrain.EVAViT``.
"""
from .. import engine, models  # noqa: F401  (layer-decay constructor, mmpretrain.EVAViT)
from .checked_dataset import (CheckedCocoDataset, CheckedLVISV1Dataset,  # noqa: F401
                              CheckedObjects365V2Dataset)
from .data_preprocessor import EVADetDataPreprocessor
from .layers import LN2d, SimpleFeaturePyramid
from .losses import FederatedSigmoidCELoss
from .metrics import EVACocoMetric, EVALVISMetric
from .roi_head import EVACascadeRoIHead, maskness
from .tta import EVADetTTAModel

__all__ = ['EVACocoMetric', 'EVALVISMetric', 'EVADetDataPreprocessor', 'LN2d',
           'SimpleFeaturePyramid', 'FederatedSigmoidCELoss',
           'EVACascadeRoIHead', 'maskness', 'EVADetTTAModel']
