"""EVA-01 video checkpoints (``eva_video_k{722,400,600,700}.pth``) -> mmaction2
``Recognizer3D`` with the ``EVAViT`` backbone and :class:`EVAVideoHead`; and image
checkpoints (MIM / classification / CLIP vision) -> the initial weights of a video model.

Video checkpoint keys (``{'model': sd, 'optimizer', ...}``): ``cls_token``, ``pos_embed``
(1, 1 + T*256, C), ``patch_embed.proj.weight`` (C, 3, 1, 14, 14) -- a tubelet-1 Conv3d --,
``blocks.*``, ``fc_norm.*``, ``head.*``. Every tensor is mapped; anything else is an error.
"""
import math
from typing import Dict

import torch

from ..models.vit_adapt import fit_pos_embed, squeeze_tubelet
from . import register_format, require_mapped
from .backbone import eva01_vit_problem, is_vit_key

VIDEO_EXTRA_KEYS = ('fc_norm.weight', 'fc_norm.bias')
HEAD_KEYS = {'head.weight': 'cls_head.fc_cls.weight', 'head.bias': 'cls_head.fc_cls.bias'}
# image-only tensors an image checkpoint drops when it initialises a video model
IMAGE_ONLY = ('backbone.mask_token', 'backbone.norm.weight', 'backbone.norm.bias')


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
            out['backbone.' + k] = squeeze_tubelet(v, k)
        elif is_vit_key(k) or k in VIDEO_EXTRA_KEYS:
            out['backbone.' + k] = v
        elif k in HEAD_KEYS:
            out[HEAD_KEYS[k]] = v
        else:
            left.append(k)
    require_mapped('eva01-video', left)
    if class_mapping is not None:
        from ..video.class_mapping import load_class_mapping, select_classes
        mapping = load_class_mapping(class_mapping)
        for k in HEAD_KEYS.values():
            if k in out:
                out[k] = select_classes(out[k], mapping, mapping.numel(), k)
    return out


def image_weights_for_video(sd: Dict[str, torch.Tensor], num_frames: int,
                            source_format: str = '') -> Dict[str, torch.Tensor]:
    """Converted weights -> the initial weights of a ``num_frames`` video model (what
    ``convert_checkpoint(..., num_frames=N)`` and ``eva_to_mm.py --num-frames N`` do).

    Video checkpoints are returned as they are (the backbone resizes their table at load
    time). From an image checkpoint (EVA-01's video init from ``eva_psz14.pt``) only the
    backbone stays, without MIM's ``mask_token`` and final ``norm``; its position table is
    tiled over the frames by the load hook's own :func:`fit_pos_embed` (no temporal
    embedding); the MIM ``lm_head``, an image classifier or a CLIP projection are dropped.
    """
    if num_frames < 1:
        raise ValueError(f'num_frames must be >= 1, got {num_frames}')
    if source_format == 'eva01-video':
        return sd
    out = {k: v for k, v in sd.items() if k.startswith('backbone.') and k not in IMAGE_ONLY}
    if 'backbone.pos_embed' not in out:
        raise KeyError('image checkpoint has no backbone.pos_embed')
    pos = out['backbone.pos_embed']
    side = math.isqrt(pos.shape[1] - 1)
    if side * side != pos.shape[1] - 1:
        raise ValueError(f'backbone.pos_embed: expected cls + square image grid, got '
                         f'{tuple(pos.shape)}')
    out['backbone.pos_embed'] = fit_pos_embed(pos, (num_frames, side, side), 1, num_frames,
                                              key='backbone.pos_embed')
    return out
