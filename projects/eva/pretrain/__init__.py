"""EVA-01 masked image modelling in mmpretrain (BEiT-style student, CLIP-L/14 teacher)."""
from ..models import CLIPVisionTower, EVAViT  # noqa: F401
from .mask_generator import EVAMaskGenerator  # noqa: F401
from .mim import EVACLIPTeacher, EVAMIM, EVAMIMHead  # noqa: F401
