"""EVA-01 video checkpoints (``eva_video_k{722,400,600,700}.pth``) -> mmaction2
``Recognizer3D`` with the ``EVAViT`` backbone and :class:`EVAVideoHead`; and image
checkpoints (MIM / classification / CLIP vision) -> the initial weights of a video model.

Video checkpoint keys (``{'model': sd, 'optimizer', ...}``): ``cls_token``, ``pos_embed``
(1, 1 + T*256, C), ``patch_embed.proj.weight`` (C, 3, 1, 14, 14) -- a tubelet-1 Conv3d --,
``blocks.*``, ``fc_norm.*``, ``head.*``. Every tensor is mapped; anything else is an error.
"""
import re
from typing import Dict, Optional

import torch

from . import detect_format, register_format, source_state_dict
from ..checkpoint import load_weights
from .backbone import eva01_vit_problem

VIT_KEY = re.compile(  # EVA-01's ViT names, kept by EVAViT
    r'^(cls_token|pos_embed|patch_embed\.proj\.bias|fc_norm\.(weight|bias))$|'
    r'^blocks\.\d+\.(norm1|norm2)\.(weight|bias)$|'
    r'^blocks\.\d+\.attn\.(qkv\.weight|q_bias|v_bias|proj\.weight|proj\.bias)$|'
    r'^blocks\.\d+\.mlp\.(fc1|fc2)\.(weight|bias)$')
HEAD_KEYS = {'head.weight': 'cls_head.fc_cls.weight', 'head.bias': 'cls_head.fc_cls.bias'}


def _is_eva01_video(sd: Dict[str, torch.Tensor]) -> bool:
    """An EVA-01 ViT with a 5-D (tubelet) patch kernel."""
    kernel = sd.get('patch_embed.proj.weight')
    return kernel is not None and kernel.ndim == 5 and \
        eva01_vit_problem(sd, kernel_ndim=5) is None


@register_format('eva01-video', _is_eva01_video,
                 'eva_video_k722.pth, eva_video_k{400,600,700}.pth',
                 lambda sd: eva01_vit_problem(sd, kernel_ndim=5)
                 if sd.get('patch_embed.proj.weight', torch.empty(0)).ndim == 5 else None)
def convert_eva01_video(sd, patch_size=None, class_mapping=None, **_):
    """-> ``backbone.*`` (2-D patch kernel: tubelet size 1) + ``cls_head.fc_cls.*``.

    ``class_mapping`` (path or indices) selects classifier rows, e.g. K722 -> K400; the
    fine-tune configs do the same at load time through ``EVAVideoHead(class_mapping=...)``.
    """
    if patch_size not in (None, sd['patch_embed.proj.weight'].shape[-1]):
        raise ValueError('EVA-01 video checkpoints are patch 14; --patch-size does not apply')
    out, left = {}, []
    for k, v in sd.items():
        if k == 'patch_embed.proj.weight':
            if v.shape[2] != 1:
                raise ValueError(f'{k}: only tubelet size 1 is supported, got {tuple(v.shape)}')
            out['backbone.' + k] = v.squeeze(2)
        elif VIT_KEY.match(k):
            out['backbone.' + k] = v
        elif k in HEAD_KEYS:
            out[HEAD_KEYS[k]] = v
        else:
            left.append(k)
    if left:
        raise KeyError(f'eva01-video: {len(left)} tensors have no mapping: {sorted(left)[:10]}')
    if class_mapping is not None:
        from ..video.class_mapping import load_class_mapping
        mapping = load_class_mapping(class_mapping)
        for k in HEAD_KEYS.values():
            if k in out:
                out[k] = out[k][mapping]
    return out



def image_to_video(sd: Dict[str, torch.Tensor], num_frames: int) -> Dict[str, torch.Tensor]:
    """Converted image weights (``backbone.*`` keys) -> the initial weights of a video model.

    EVA-01's video init from ``eva_psz14.pt``: the spatial pos table is tiled over
    ``num_frames`` (no temporal embedding), MIM's ``mask_token``, final ``norm`` and
    ``lm_head`` and any image classifier are dropped; ``fc_norm`` is kept when present.
    """
    if num_frames < 1:
        raise ValueError(f'num_frames must be >= 1, got {num_frames}')
    out = {}
    for k, v in sd.items():
        if not k.startswith('backbone.'):
            continue  # MIM lm_head, image classifier, CLIP projection
        name = k[len('backbone.'):]
        if name in ('mask_token', 'norm.weight', 'norm.bias'):
            continue
        if name == 'pos_embed':
            side = int(round((v.shape[1] - 1) ** 0.5))
            if side * side != v.shape[1] - 1:
                raise ValueError(f'{k}: expected cls + square image grid, got {tuple(v.shape)}')
            v = torch.cat([v[:, :1], v[:, 1:].repeat(1, num_frames, 1)], dim=1)
        out[k] = v
    if 'backbone.pos_embed' not in out:
        raise KeyError('image checkpoint has no backbone.pos_embed')
    return out


def convert_for_video(src: str, num_frames: Optional[int] = None,
                      class_mapping=None) -> dict:
    """Any EVA-01 checkpoint -> weights of the video recogniser.

    Video checkpoints convert as they are (``num_frames`` ignored: the backbone resizes the
    pos table at load time); image checkpoints (MIM, classification, CLIP vision) go
    through their image format and :func:`image_to_video` with ``num_frames``.
    """
    sd = source_state_dict(load_weights(src))
    fmt = detect_format(sd)
    if fmt.convert is convert_eva01_video:
        out = convert_eva01_video(sd, class_mapping=class_mapping)
    else:
        if not num_frames:
            raise ValueError(f'{src} is an image checkpoint ({fmt.name}): give num_frames')
        out = image_to_video(fmt.convert(sd), num_frames)
    out = {k: v.float() if v.is_floating_point() else v for k, v in out.items()}
    return dict(state_dict=out, meta=dict(source=src, source_format=fmt.name,
                                          num_frames=num_frames))
