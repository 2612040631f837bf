"""EVA backbone and CLIP towers, registered in mmpretrain's MODELS."""
from .clip_transformer import CLIPTransformer, CLIPVisionTower  # noqa: F401
from .eva_vit import EVAViT  # noqa: F401
