"""EVA-CLIP in mmpretrain: offline BPE tokenizer, EVA image tower + CLIP text tower,
contrastive training, zero-shot classification on images and video centre frames."""
from ..engine import *  # noqa: F401,F403  (layer decay, reproducible sampling)
from ..models import EVAViT  # noqa: F401
from .datasets import CsvImageTextDataset, ImageNetV2, ObjectNet, VideoCentreFrame  # noqa: F401
from .model import EVACLIP, EVACLIPTextTransformer, clip_contrastive_loss  # noqa: F401
from .tokenizer import EVACLIPTokenizer  # noqa: F401
from .zero_shot import get_classnames, get_templates, summarize  # noqa: F401
