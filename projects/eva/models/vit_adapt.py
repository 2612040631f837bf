"""Checkpoint adaptation for ``EVAViT``: pure functions on tensors and state dicts.

One copy of every transformation a checkpoint of another resolution, frame count, patch size
or token layout needs, like timm's ``checkpoint_filter_fn`` beside its model. Both
``EVAViT``'s load hook (at ``load_state_dict`` time, for the model's own shapes) and the
converters (``projects/eva/converters``, offline, e.g. ``--patch-size 16``) call these; none
of them reads a model. 2-D position tables go through mmpretrain's ``resize_pos_embed``
(bicubic, ``align_corners=False``, no antialias: EVA-01's and EVA-02's resize).
"""
import math
import re
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.utils import resize_pos_embed as _mmpretrain_resize_pos_embed

StateDict = Dict[str, torch.Tensor]
# stored RoPE tables (EVA-02's official ``rope``/``rope_win``/``rope_glb`` buffers,
# mmpretrain's ``freqs_*``, timm's ``pos_embed``/``bands``): recomputed per grid, never loaded
ROPE_KEY = re.compile(r'(^|\.)rope(_win|_glb)?\.(freqs_(cos|sin)|pos_embed|bands)$')
REL_POS_INTERP = ('linear', 'beit')


# ------------------------------------------------------------------ position tables
def resize_pos_embed(pos_embed: torch.Tensor, src_shape: Sequence[int],
                     dst_shape: Sequence[int], num_extra_tokens: int,
                     mode: str = 'bicubic') -> torch.Tensor:
    """Resize a (1, extra + prod(src_shape), C) position table to ``dst_shape``.

    2-D shapes ``(h, w)`` use mmpretrain's ``resize_pos_embed`` (``mode``, bicubic as EVA);
    3-D shapes ``(t, h, w)`` (video) are resized trilinearly, EVA-01's 8 -> 16 frame rule.
    Extra (cls) slots are kept as they are.
    """
    src_shape, dst_shape = tuple(src_shape), tuple(dst_shape)
    if src_shape == dst_shape:
        return pos_embed
    if len(src_shape) != len(dst_shape) or len(src_shape) not in (2, 3):
        raise ValueError(f'cannot resize a {src_shape} position grid to {dst_shape}')
    n = pos_embed.shape[1] - num_extra_tokens
    if n != math.prod(src_shape):
        raise ValueError(f'position table has {n} grid tokens, expected '
                         f'{math.prod(src_shape)} for grid {src_shape}')
    if len(dst_shape) == 2:
        return _mmpretrain_resize_pos_embed(pos_embed, src_shape, dst_shape, mode=mode,
                                            num_extra_tokens=num_extra_tokens)
    extra, grid = pos_embed[:, :num_extra_tokens], pos_embed[:, num_extra_tokens:]
    channels = grid.shape[-1]
    grid = grid.reshape(1, *src_shape, channels).movedim(-1, 1).float()
    grid = F.interpolate(grid, size=dst_shape, mode='trilinear', align_corners=False)
    grid = grid.movedim(1, -1).reshape(1, -1, channels).to(pos_embed.dtype)
    return torch.cat([extra, grid], dim=1)


def split_extra_tokens(total: int, grid: Tuple[int, ...],
                       frames: Optional[int] = None) -> Tuple[int, Tuple[int, ...]]:
    """How a checkpoint table of ``total`` rows is laid out: ``(extra slots, grid)``. One cls
    slot if ``total - 1`` is a plausible grid (the model's ``grid``, a square, or frames x the
    model's spatial grid), else none."""
    for extra in (1, 0):
        src = _infer_grid(total - extra, grid, frames)
        if total - extra > 0 and src is not None:
            return extra, src
    raise ValueError(f'cannot read a position grid from a table of {total} tokens '
                     f'(model grid {tuple(grid)})')


def _infer_grid(n: int, grid: Tuple[int, ...], frames: Optional[int]):
    if n == math.prod(grid):
        return tuple(grid)
    side = math.isqrt(max(n, 0))
    if side * side == n:
        return (side, side)
    if frames:  # video table with another frame count: keep the spatial grid
        hw = math.prod(grid[1:])
        if n % hw == 0:
            return (n // hw, *grid[1:])
    return None


def tile_over_frames(pos: torch.Tensor, num_frames: int, num_extra_tokens: int) -> torch.Tensor:
    """An image table (1, extra + h*w, C) -> a video table (1, extra + T*h*w, C): the spatial
    grid repeated for every frame, no temporal embedding (EVA-01's video init)."""
    if num_frames < 1:
        raise ValueError(f'num_frames must be >= 1, got {num_frames}')
    extra, grid = pos[:, :num_extra_tokens], pos[:, num_extra_tokens:]
    return torch.cat([extra, grid.repeat(1, num_frames, 1)], dim=1)


def fit_pos_embed(pos: torch.Tensor, pos_grid: Tuple[int, ...], num_extra_tokens: int,
                  num_frames: Optional[int] = None, embed_dims: Optional[int] = None,
                  key: str = 'pos_embed') -> torch.Tensor:
    """A checkpoint's position table -> the table of a model with grid ``pos_grid`` (``(t, h,
    w)`` with ``num_frames``) and ``num_extra_tokens`` cls slots: a cls slot the model lacks
    is dropped (detection), an image table is resized and tiled over frames (video init),
    any other grid is resized (bicubic; trilinear over frames)."""
    if pos.ndim != 3 or (embed_dims is not None and pos.shape[-1] != embed_dims):
        raise ValueError(f'{key} of shape {tuple(pos.shape)} does not fit embed_dims '
                         f'{embed_dims}')
    src_extra, src_grid = split_extra_tokens(pos.shape[1], pos_grid, num_frames)
    if src_extra and not num_extra_tokens:
        pos = pos[:, src_extra:]
    elif num_extra_tokens and not src_extra:
        raise ValueError(f'checkpoint {key} has no cls slot but the model has a cls token')
    if num_frames and len(src_grid) == 2:
        pos = resize_pos_embed(pos, src_grid, pos_grid[1:], num_extra_tokens)
        return tile_over_frames(pos, num_frames, num_extra_tokens)
    return resize_pos_embed(pos, src_grid, pos_grid, num_extra_tokens)


# ------------------------------------------------------------------ patch kernels
def squeeze_tubelet(kernel: torch.Tensor, key: str = 'patch_embed.proj.weight') -> torch.Tensor:
    """A tubelet-1 Conv3d kernel (C, 3, 1, p, p) -> the shared per-frame Conv2d kernel
    (EVA-01 video); a 4-D kernel is returned as it is."""
    if kernel.ndim == 4:
        return kernel
    if kernel.ndim != 5 or kernel.shape[2] != 1:
        raise ValueError(f'{key}: only tubelet size 1 is supported, got kernel '
                         f'{tuple(kernel.shape)}')
    return kernel.squeeze(2)


def resize_patch_kernel(weight: torch.Tensor, patch_size: int) -> torch.Tensor:
    """EVA's 14 -> 16 conversion (``interpolate_patch_14to16.py``): a plain bicubic resize of
    the kernel, no magnitude rescale (timm's ``resample_patch_embed`` pseudo-inverse is a
    different operation and gives other weights)."""
    if weight.shape[-1] == patch_size:
        return weight
    return F.interpolate(weight.float(), size=(patch_size, patch_size), mode='bicubic',
                         align_corners=False)


def change_patch_size(sd: StateDict, patch_size: Optional[int],
                      prefix: str = 'backbone.') -> StateDict:
    """``--patch-size``: the kernel resized, the position grid kept at the pretraining *image*
    size (224 px: 16 x 16 at patch 14 -> 14 x 14 at patch 16), as the official p14to16
    files. Returns a new dict; ``sd`` is not modified."""
    key, pos_key = prefix + 'patch_embed.proj.weight', prefix + 'pos_embed'
    if not patch_size or key not in sd or sd[key].shape[-1] == patch_size:
        return sd
    out = dict(sd)
    src_patch = sd[key].shape[-1]
    out[key] = resize_patch_kernel(sd[key], patch_size)
    if pos_key in sd:
        pos = sd[pos_key]
        side = math.isqrt(pos.shape[1] - 1)
        if side * side != pos.shape[1] - 1:
            raise ValueError(f'{pos_key} with {pos.shape[1]} tokens is not cls + square grid')
        new = side * src_patch // patch_size
        out[pos_key] = resize_pos_embed(pos.float(), (side, side), (new, new), 1)
    return out


# ------------------------------------------------------------------ relative positions
def resize_rel_pos_beit(rel_pos: torch.Tensor, length: int,
                        ratio: float = 1.0903078) -> torch.Tensor:
    """BEiT-style resize of a rel-pos table (L, C): the source offsets sit on a geometric
    progression (step ``ratio ** i``) and the target integer offsets are read off a cubic
    spline through them (extrapolating). EVA-01's ``interp_type="beit"`` for the 1536 eval."""
    from scipy import interpolate
    src = rel_pos.shape[0]
    if src % 2 == 0 or length % 2 == 0:
        raise ValueError(f'rel-pos tables have odd lengths, got {src} -> {length}')
    dis = torch.cumsum(torch.tensor([ratio ** i for i in range(src // 2)],
                                    dtype=torch.float64), 0).numpy()
    x = list(-dis[::-1]) + [0.] + list(dis)
    half = length // 2
    dx = torch.arange(-half, half + 1, dtype=torch.float64).numpy()
    spline = interpolate.interp1d(x, rel_pos.detach().float().cpu().numpy(), kind='cubic',
                                  axis=0, fill_value='extrapolate')
    return torch.as_tensor(spline(dx), dtype=rel_pos.dtype, device=rel_pos.device)


def resize_rel_pos(rel_pos: torch.Tensor, length: int, mode: str = 'linear') -> torch.Tensor:
    """Resize a decomposed relative-position table (L, C) to ``length`` rows: ``linear``
    (ViTDet / SAM's ``get_rel_pos`` resize, training and checkpoint loading) or ``beit``
    (:func:`resize_rel_pos_beit`)."""
    if rel_pos.shape[0] == length:
        return rel_pos
    if mode == 'beit':
        return resize_rel_pos_beit(rel_pos, length)
    if mode != 'linear':
        raise ValueError(f'rel-pos interpolation must be one of {REL_POS_INTERP}, got {mode!r}')
    out = F.interpolate(rel_pos.float().t().unsqueeze(0), size=length, mode='linear',
                        align_corners=False)
    return out.squeeze(0).t().to(rel_pos.dtype)


def fit_rel_pos(sd: StateDict, sizes: Dict[int, Tuple[int, int]],
                prefix: str = '') -> StateDict:
    """Resize every block's ``attn.rel_pos_{h,w}`` to its ``(h, w)`` token grid in ``sizes``
    (block index -> grid: the window, or the image grid of a global block)."""
    out = dict(sd)
    for i, grid in sizes.items():
        for axis, size in zip('hw', grid):
            key = f'{prefix}blocks.{i}.attn.rel_pos_{axis}'
            if key in out and out[key].shape[0] != 2 * size - 1:
                out[key] = resize_rel_pos(out[key], 2 * size - 1)
    return out


def check_rel_pos_bias(sd: StateDict, prefix: str, table_shape: Tuple[int, ...],
                       index: Optional[torch.Tensor], grid: Tuple[int, int]) -> StateDict:
    """A BEiT table (``prefix`` = one block's ``attn.``) must be for the model's grid
    (resizing it is not supported); an official ``relative_position_index`` is checked
    against ``index`` (the model's, None = not checked) and dropped."""
    key = prefix + 'relative_position_bias_table'
    if key in sd and tuple(sd[key].shape) != tuple(table_shape):
        raise ValueError(f'{key}: checkpoint table {tuple(sd[key].shape)} does not fit the '
                         f'model\'s {tuple(table_shape)} (patch grid {grid}); BEiT tables are '
                         'not resized: build with the checkpoint\'s img_size')
    key = prefix + 'relative_position_index'
    if key not in sd:
        return sd
    out = dict(sd)
    given = out.pop(key)
    if index is not None and (tuple(given.shape) != tuple(index.shape)
                              or not torch.equal(given.to(index), index)):
        raise ValueError(f'{key}: not the BEiT index of a {grid} grid')
    return out


# ------------------------------------------------------------------ keys
def drop_rope_tables(sd: StateDict) -> StateDict:
    """Without EVA-02's stored RoPE tables: ``EVAViT`` computes them for every grid."""
    return {k: v for k, v in sd.items() if not ROPE_KEY.search(k)}

