"""EVA-01 / EVA-02 MIM: a BEiT-style student regresses CLIP patch features of the masked
patches (EVA-01: OpenAI CLIP-L teacher; EVA-02: an EVA-CLIP image tower, :class:`EVACLIPTeacher`).

mmpretrain registers an ``EVA`` algorithm that is MAE-style (dropped tokens + decoder); this is
the paper's method and is registered as ``EVAMIM``.
"""
from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..loader import load_weights, unwrap_state_dict
from ..models.eva_vit import trunc_normal_sigma_


@MODELS.register_module()
class EVAMIMHead(BaseModule):
    """``lm_head`` Linear(C -> teacher dim) on the masked tokens, negative cosine loss.

    The encoder's final LayerNorm is the only norm before ``lm_head`` (EVA-01). The loss is
    ``-cos`` averaged over all masked tokens of the batch, computed in fp32.
    """

    def __init__(self, in_channels: int, out_channels: int = 768, init_std: float = 0.015,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.init_std = init_std
        self.lm_head = nn.Linear(in_channels, out_channels)

    def init_weights(self):
        super().init_weights()
        if self.init_cfg is None:
            trunc_normal_sigma_(self.lm_head.weight, self.init_std)
            nn.init.zeros_(self.lm_head.bias)

    def loss(self, patch_tokens: torch.Tensor, target: torch.Tensor,
             mask: torch.Tensor) -> torch.Tensor:
        """``patch_tokens`` (B, N, C), ``target`` (B, N, D), ``mask`` (B, N) bool."""
        if target.shape[:2] != patch_tokens.shape[:2]:
            raise ValueError(f'teacher gives {tuple(target.shape[:2])} (batch, tokens) but the '
                             f'student {tuple(patch_tokens.shape[:2])}: the two patch grids '
                             'must match')
        pred = self.lm_head(patch_tokens[mask])
        return -F.cosine_similarity(pred.float(), target[mask].float(), dim=-1).mean()


@MODELS.register_module()
class EVAMIM(BaseSelfSupervisor):
    """EVA-01 masked image modelling.

    The student (``EVAViT`` with a mask token) sees the image with masked patch embeddings
    replaced by the mask token; the frozen CLIP teacher sees the same image (EVA-01 feeds the
    same crop with the same normalisation to both). The teacher is deliberately **not** a
    registered submodule: it stays out of the optimizer, DDP/ZeRO/FSDP wrapping and saved
    checkpoints, but still follows ``.to()``/``.cuda()``/``.half()``.
    """

    def __init__(self, backbone: dict, head: dict, teacher: Union[dict, nn.Module],
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        super().__init__(backbone=backbone, head=head, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if getattr(self.backbone, 'mask_token', None) is None:
            raise ValueError('EVAMIM needs a backbone built with with_mask_token=True')
        if isinstance(teacher, dict):
            teacher = MODELS.build(teacher)
        teacher.requires_grad_(False).eval()
        object.__setattr__(self, 'teacher', teacher)

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.teacher._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self

    def extract_feat(self, inputs: torch.Tensor):
        return self.backbone(_first(inputs))

    def loss(self, inputs: Union[torch.Tensor, List[torch.Tensor]],
             data_samples: List[DataSample], **kwargs) -> Dict[str, torch.Tensor]:
        img = _first(inputs)
        mask = torch.stack([ds.mask for ds in data_samples]).flatten(1).bool().to(img.device)
        with torch.no_grad():
            target = self.teacher(img)
        # final block + final norm, whatever out_indices / out_type the config sets
        tokens = self.backbone.forward_features(img, mask)
        patch_tokens = tokens[:, self.backbone.num_extra_tokens:]
        return dict(loss=self.head.loss(patch_tokens, target, mask))


@MODELS.register_module()
class EVACLIPTeacher(nn.Module):
    """EVA-02's MIM teacher: an EVA-CLIP image tower (``EVAViT`` with its final norm +
    ``clip_projection``) applied to **every patch token**: target = ``proj(norm(x))[:, 1:]``,
    not normalised (asuka/eva_clip/vit_model.py:347-368; EVA-02 used EVA-01-CLIP g/14 ->
    1024-d for every student size).

    Args:
        vision_backbone: the tower's ``EVAViT`` config (``final_norm=True``).
        embed_dim: CLIP embedding width (1024 for EVA-01-CLIP g/14).
        checkpoint: our ``EVACLIP`` run (``backbone.*``, ``clip_projection.*``; the text tower
            and ``logit_scale`` are not used) or ``eva_to_mm.py``'s conversion of an EVA-CLIP
            vision encoder. ``None``: a random tower drawn from ``init_seed`` (tests only).
    """

    def __init__(self, vision_backbone: dict, embed_dim: int = 1024,
                 checkpoint: Optional[str] = None, init_seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.backbone = MODELS.build(vision_backbone)
            if self.backbone.norm is None:
                raise ValueError('the EVA-CLIP teacher projects normed tokens: build its EVAViT '
                                 'with final_norm=True')
            self.clip_projection = nn.Linear(self.backbone.embed_dims, embed_dim)
            if checkpoint is None:
                self.backbone.init_weights()
        if checkpoint is not None:
            self.load_checkpoint(checkpoint)

    def load_checkpoint(self, path: str) -> None:
        sd = unwrap_state_dict(load_weights(path))
        tower = {k: v for k, v in sd.items() if k.startswith(('backbone.', 'clip_projection.'))}
        if not tower:
            raise KeyError(f'{path}: no backbone.* / clip_projection.* tensors (an EVACLIP run or '
                           f'an eva_to_mm.py EVA-CLIP vision conversion); keys like '
                           f'{sorted(sd)[:8]}')
        self.load_state_dict(tower, strict=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.backbone.forward_features(x)
        return self.clip_projection(tokens[:, self.backbone.num_extra_tokens:])


def _first(inputs):
    return inputs[0] if isinstance(inputs, (list, tuple)) else inputs
