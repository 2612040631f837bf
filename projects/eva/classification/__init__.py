"""EVA-01 image classification in mmpretrain: heads, ImageNet robustness sets, metric."""
from ..models import EVAViT  # noqa: F401
from .. import engine  # noqa: F401  (layer-decay constructor)
from .datasets import ImageNetVariant  # noqa: F401
from .heads import EVAClsHead, EVALinearProbeHead  # noqa: F401
from .metrics import RobustAccuracy  # noqa: F401
