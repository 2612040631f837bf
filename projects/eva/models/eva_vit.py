"""EVA-01 / EVA-02 vision transformer: one implementation for every task.

EVA-01 is a plain ViT with BEiT-style q/v biases (no k bias), learnable absolute position
embeddings and a cls token. EVA-02 adds options to the same blocks (``arch='eva02-*'``):
2-D rotary position embedding on q/k (computed for the actual token grid, never stored),
SwiGLU MLPs (fused ``w12`` for Ti/S, ``w1``/``w2`` + sub-LN ``ffn_ln`` for B/L, which also
split q/k/v), the EVA-02-CLIP ``inner_attn_ln`` and EVA-02's initialisation. The same blocks serve MIM pretraining (mask tokens),
classification (mean pooling + ``fc_norm``), ViTDet-style detection (window attention with
decomposed relative positions, no cls token), segmentation (several outputs) and video
(frames share the patch embedding, joint space-time attention). Parameter names follow the
official EVA-01 / timm layout (``blocks.N.attn.qkv``, ``mlp.fc1``...) so checkpoints convert
with few renames and downstream layer decay reads ``blocks.N``.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from .attention import attention, decomposed_rel_pos_terms, expand_bias
from .vit_adapt import (REL_POS_INTERP, check_rel_pos_bias, drop_rope_tables, fit_pos_embed,
                        fit_rel_pos, resize_pos_embed, resize_rel_pos, squeeze_tubelet)

ARCH_ZOO = {
    'tiny': dict(embed_dims=192, num_layers=12, num_heads=3, feedforward_channels=768),
    'small': dict(embed_dims=384, num_layers=12, num_heads=6, feedforward_channels=1536),
    'base': dict(embed_dims=768, num_layers=12, num_heads=12, feedforward_channels=3072),
    'large': dict(embed_dims=1024, num_layers=24, num_heads=16, feedforward_channels=4096),
    'giant': dict(embed_dims=1408, num_layers=40, num_heads=16, feedforward_channels=6144),
    # EVA-02 (asuka/modeling_finetune.py:639-744): hidden int(D * 4 * 2/3), RoPE everywhere;
    # Ti/S fused SwiGLU + fused qkv, B/L naive SwiGLU with sub-LN (ffn_ln, separate q/k/v)
    'eva02-tiny': dict(embed_dims=192, num_layers=12, num_heads=3, feedforward_channels=512,
                       mlp_type='swiglu_fused', rope=True),
    'eva02-small': dict(embed_dims=384, num_layers=12, num_heads=6, feedforward_channels=1024,
                        mlp_type='swiglu_fused', rope=True),
    'eva02-base': dict(embed_dims=768, num_layers=12, num_heads=12, feedforward_channels=2048,
                       mlp_type='swiglu', sub_ln=True, rope=True),
    'eva02-large': dict(embed_dims=1024, num_layers=24, num_heads=16,
                        feedforward_channels=2730, mlp_type='swiglu', sub_ln=True, rope=True),
    # EVA-02-CLIP image towers (rei/eva_clip/model_configs/EVA02-CLIP-*.json): B/L add the
    # inner_attn_ln to the B/L layout (patch 16 for B/16 and 14 for L/14 is EVAViT's
    # ``patch_size``); E/14 and E/14+ share one tower: fused qkv, GELU MLP, no RoPE,
    # residual post-norm blocks
    'eva02-clip-base': dict(embed_dims=768, num_layers=12, num_heads=12,
                            feedforward_channels=2048, mlp_type='swiglu', sub_ln=True,
                            rope=True, inner_attn_ln=True),
    'eva02-clip-large': dict(embed_dims=1024, num_layers=24, num_heads=16,
                             feedforward_channels=2730, mlp_type='swiglu', sub_ln=True,
                             rope=True, inner_attn_ln=True),
    'eva02-clip-enormous': dict(embed_dims=1792, num_layers=64, num_heads=16,
                                feedforward_channels=15360, post_norm=True),
}
ARCH_REQUIRED = ('embed_dims', 'num_layers', 'num_heads', 'feedforward_channels')
# optional arch keys and their EVA-01 defaults
ARCH_OPTIONAL = dict(mlp_type='gelu', sub_ln=False, rope=False, inner_attn_ln=False,
                     post_norm=False)
MLP_TYPES = ('gelu', 'swiglu_fused', 'swiglu')
INIT_TYPES = ('eva01', 'eva02')
OUT_TYPES = ('raw', 'cls_token', 'featmap', 'avg_featmap')


def trunc_normal_sigma_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    """EVA-01's init: normal(0, std) truncated at +-1 sigma (not timm's +-2 absolute)."""
    return nn.init.trunc_normal_(tensor, mean=0., std=std, a=-std, b=std)


def decomposed_rel_pos_bias(q: torch.Tensor, rel_pos_h: torch.Tensor,
                            rel_pos_w: torch.Tensor, size: Tuple[int, int],
                            interp: str = 'linear') -> torch.Tensor:
    """MViTv2/ViTDet decomposed relative position bias as a dense additive mask (the N²
    reference; :class:`Attention` passes the factors to :func:`attention` instead).

    ``q``: (B, heads, h*w, head_dim). Returns (B, heads, h*w, h*w), added to the logits.
    """
    return expand_bias(q, rel_pos_terms(q, rel_pos_h, rel_pos_w, size, interp))


def rel_pos_terms(q: torch.Tensor, rel_pos_h: torch.Tensor, rel_pos_w: torch.Tensor,
                  size: Tuple[int, int], interp: str = 'linear'):
    """The (rel_h, rel_w) factors of the decomposed bias, tables resized to the grid."""
    h, w = size
    return decomposed_rel_pos_terms(q, resize_rel_pos(rel_pos_h, 2 * h - 1, interp),
                                    resize_rel_pos(rel_pos_w, 2 * w - 1, interp), size)


def rope_2d(grid: Sequence[int], head_dim: int, ref_grid: Sequence[int] = (16, 16),
            theta: float = 10000., device=None) -> Tuple[torch.Tensor, torch.Tensor]:
    """EVA-02's 2-D rotary table (``VisionRotaryEmbeddingFast``, = timm's ``RotaryEmbeddingCat``
    with ``ref_feat_shape``) for an ``(h, w)`` token grid: ``(cos, sin)``, each (h*w, head_dim).

    Frequencies ``theta ** (-2j / (head_dim / 2))``, j < head_dim / 4, each repeated twice
    (interleaved pairs); row positions ``i * ref_h / h`` drive the first half of the head dims,
    column positions the second half, so any grid is squeezed into the pretraining grid
    ``ref_grid`` (``pt_seq_len``). Computed at run time in fp32: it is never a checkpoint key.
    """
    if head_dim % 4:
        raise ValueError(f'2-D RoPE needs a head dim divisible by 4, got {head_dim}')
    dim = head_dim // 2
    freqs = 1. / (theta ** (torch.arange(0, dim, 2, device=device)[:dim // 2].float() / dim))
    axes = []
    for n, ref in zip(grid, ref_grid):
        t = torch.arange(n, device=device) / n * ref
        axes.append(torch.outer(t, freqs).repeat_interleave(2, dim=-1))  # (n, dim)
    (h, fh), (w, fw) = zip(grid, axes)
    angles = torch.cat([fh[:, None].expand(h, w, dim), fw[None, :].expand(h, w, dim)], dim=-1)
    angles = angles.reshape(h * w, head_dim)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, rope: Tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate the last ``len(cos)`` tokens of ``x`` (B, heads, N, d): pairs (x0, x1) ->
    (x0 cos - x1 sin, x1 cos + x0 sin) (GPT-J interleaved); leading (cls) tokens untouched.
    In fp32, back to ``x``'s dtype (as the official code and timm)."""
    cos, sin = rope
    extra = x.shape[-2] - cos.shape[0]
    t = x[..., extra:, :].float()
    rot = torch.stack([-t[..., 1::2], t[..., ::2]], dim=-1).flatten(-2)
    t = (t * cos + rot * sin).to(x.dtype)
    return torch.cat([x[..., :extra, :], t], dim=-2) if extra else t


def beit_relative_position_index(h: int, w: int) -> torch.Tensor:
    """BEiT's (1 + h*w, 1 + h*w) index into a ``(2h-1)(2w-1) + 3``-row bias table.

    Patch pairs read the row of their (dy, dx) offset; the last three rows are shared by
    cls -> patch (row 0), patch -> cls (column 0) and cls -> cls, as in BEiT / EVA-01 seg.
    """
    coords = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :]  # (2, hw, hw)
    num = (2 * h - 1) * (2 * w - 1) + 3
    index = torch.zeros(h * w + 1, h * w + 1, dtype=torch.long)
    index[1:, 1:] = (rel[0] + h - 1) * (2 * w - 1) + rel[1] + w - 1
    index[0, :] = num - 3
    index[:, 0] = num - 2
    index[0, 0] = num - 1
    return index


def window_partition(x: torch.Tensor, window: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """(B, H, W, C) -> (B * nW, window, window, C), zero-padding H and W to the window."""
    b, h, w, c = x.shape
    pad_h, pad_w = (-h) % window, (-w) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window, window, wp // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c), (hp, wp)


def window_unpartition(windows: torch.Tensor, window: int, padded: Tuple[int, int],
                       size: Tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`, cropping the padding."""
    hp, wp = padded
    h, w = size
    b = windows.shape[0] // (hp * wp // window // window)
    x = windows.view(b, hp // window, wp // window, window, window, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    return x[:, :h, :w].contiguous()


class LayerNorm(nn.LayerNorm):
    """LayerNorm that can compute in fp32 under fp16/bf16 (EVA-01's ``LayerNormWithForceFP32``)."""

    def __init__(self, dim: int, eps: float = 1e-6, force_fp32: bool = False):
        super().__init__(dim, eps=eps)
        self.force_fp32 = force_fp32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.force_fp32 and x.dtype != torch.float32:
            with torch.autocast(x.device.type, enabled=False):
                return F.layer_norm(x.float(), self.normalized_shape, self.weight.float(),
                                    self.bias.float(), self.eps).to(x.dtype)
        return super().forward(x)


class Attention(nn.Module):
    """Multi-head self-attention with q/v bias (k bias is zero), on SDPA.

    ``rel_pos_size``: token grid of the decomposed relative-position tables (detection).
    ``fp32_attention``: compute logits and softmax in fp32 under autocast (EVA-01 ``qk_float``).
    ``rel_pos_interp``: how tables are resized to another grid at run time (``linear``/``beit``).
    ``rel_pos_bias_size``: patch grid of a BEiT relative-position bias table (one learned
    logit bias per head and offset, plus cls rows; EVA-01 seg "relpos" variant). The grid is
    fixed: inputs must have exactly that many tokens (with or without the cls token).
    ``split_qkv``: separate ``q_proj``/``k_proj``/``v_proj`` (EVA-02 B/L, sub-LN) instead of
    the fused ``qkv``; ``inner_norm``: ``inner_attn_ln`` on the attention output before
    ``proj`` (EVA-02-CLIP). ``forward(x, hw, rope)``: ``rope`` = :func:`rope_2d` tables, applied
    to q and k (patch tokens) before the attention kernel.
    """

    def __init__(self, dim: int, num_heads: int, qv_bias: bool = True,
                 rel_pos_size: Optional[Tuple[int, int]] = None,
                 fp32_attention: bool = False, rel_pos_interp: str = 'linear',
                 rel_pos_bias_size: Optional[Tuple[int, int]] = None,
                 split_qkv: bool = False, inner_norm: bool = False, norm_eps: float = 1e-6):
        super().__init__()
        if rel_pos_interp not in REL_POS_INTERP:
            raise ValueError(f'rel_pos_interp must be one of {REL_POS_INTERP}, '
                             f'got {rel_pos_interp!r}')
        self.rel_pos_interp = rel_pos_interp
        if dim % num_heads:
            raise ValueError(f'embed_dims {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.fp32_attention = fp32_attention
        self.split_qkv = split_qkv
        if split_qkv:  # EVA-02 B/L: bias-free projections + the q/v bias parameters
            self.q_proj = nn.Linear(dim, dim, bias=False)
            self.k_proj = nn.Linear(dim, dim, bias=False)
            self.v_proj = nn.Linear(dim, dim, bias=False)
        else:
            self.qkv = nn.Linear(dim, dim * 3, bias=False)
        if qv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
            self.register_buffer('k_bias', torch.zeros(dim), persistent=False)
        else:
            self.q_bias = self.v_bias = None
        self.inner_attn_ln = LayerNorm(dim, norm_eps, fp32_attention) if inner_norm else None
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_size = tuple(rel_pos_size) if rel_pos_size else None
        if self.rel_pos_size:
            # ViTDet: zero-initialised tables, new parameters absent from MIM checkpoints.
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * self.rel_pos_size[0] - 1, self.head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * self.rel_pos_size[1] - 1, self.head_dim))
        self.rel_pos_bias_size = tuple(rel_pos_bias_size) if rel_pos_bias_size else None
        if self.rel_pos_bias_size:
            h, w = self.rel_pos_bias_size
            # zero-init (BEiT/EVA-01); the index is rebuilt, not stored in checkpoints, and
            # kept as int32 (half of BEiT's int64 buffer: 40 x 3137^2 entries at 896 px)
            self.relative_position_bias_table = nn.Parameter(
                torch.zeros((2 * h - 1) * (2 * w - 1) + 3, num_heads))
            self.register_buffer('relative_position_index',
                                 beit_relative_position_index(h, w).int(), persistent=False)

    def rel_pos_bias(self, n: int) -> torch.Tensor:
        """(heads, n, n) BEiT bias for ``n`` tokens: the table's grid, with or without cls."""
        return self.relative_position_bias_table[self.rel_pos_index(n)].permute(2, 0, 1)

    def rel_pos_index(self, n: int) -> torch.Tensor:
        """(n, n) rows of the BEiT table for ``n`` tokens (with or without cls)."""
        h, w = self.rel_pos_bias_size
        index = self.relative_position_index
        if n == h * w:
            index = index[1:, 1:]
        elif n != h * w + 1:
            raise ValueError(f'the relative-position bias table is for a {h}x{w} patch grid '
                             f'({h * w} tokens + cls), got {n} tokens: feed inputs of the '
                             'model\'s img_size (e.g. slide inference with that crop)')
        return index

    def project_qkv(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """(B, N, C) -> q, k, v as (B, heads, N, head_dim); k has no bias."""
        b, n, c = x.shape
        if self.split_qkv:
            q = F.linear(x, self.q_proj.weight, self.q_bias)
            k = F.linear(x, self.k_proj.weight)
            v = F.linear(x, self.v_proj.weight, self.v_bias)
            return tuple(t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
                         for t in (q, k, v))
        bias = None
        if self.q_bias is not None:
            bias = torch.cat([self.q_bias, self.k_bias, self.v_bias])
        qkv = F.linear(x, self.qkv.weight, bias)
        return qkv.view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)

    def forward(self, x: torch.Tensor, hw: Optional[Tuple[int, int]] = None,
                rope: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.project_qkv(x)
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        rel = table = None
        if self.rel_pos_size:  # ``hw`` is checked once per forward by EVAViT.forward_blocks
            rel = rel_pos_terms(q, self.rel_pos_h, self.rel_pos_w, hw, self.rel_pos_interp)
        if self.rel_pos_bias_size:
            if hw is not None and n == hw[0] * hw[1] and tuple(hw) != self.rel_pos_bias_size:
                raise ValueError(f'the relative-position bias table is for a '
                                 f'{self.rel_pos_bias_size} patch grid, the input grid is {hw}')
            table = (self.relative_position_bias_table, self.rel_pos_index(n))
        if self.fp32_attention and q.dtype != torch.float32:
            with torch.autocast(x.device.type, enabled=False):
                out = attention(q.float(), k.float(), v.float(),
                                rel_pos=None if rel is None else tuple(t.float() for t in rel),
                                pos_table=None if table is None else (table[0].float(), table[1]))
            out = out.to(x.dtype)
        else:
            out = attention(q, k, v, rel_pos=rel, pos_table=table)
        out = out.transpose(1, 2).reshape(b, n, c)
        if self.inner_attn_ln is not None:
            out = self.inner_attn_ln(out)
        return self.proj(out)


class Mlp(nn.Module):
    """fc1 -> exact GELU (-> sub-LN ``ffn_ln``) -> fc2 (EVA-01)."""

    def __init__(self, dim: int, hidden: int, sub_ln: bool = False, norm_eps: float = 1e-6,
                 force_fp32: bool = False):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.ffn_ln = LayerNorm(hidden, norm_eps, force_fp32) if sub_ln else None
        self.fc2 = nn.Linear(hidden, dim)

    @property
    def out_proj(self) -> nn.Linear:
        return self.fc2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.fc1(x))
        return self.fc2(x if self.ffn_ln is None else self.ffn_ln(x))


class SwiGLUFused(nn.Module):
    """EVA-02 Ti/S ``xops.SwiGLU``: ``w12`` (2H x D; the first H rows gate), SiLU gate,
    ``w3`` (D x H); no norm (timm's ``GluMlp``)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    @property
    def out_proj(self) -> nn.Linear:
        return self.w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, x = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(gate) * x)


class SwiGLU(nn.Module):
    """EVA-02 B/L naive SwiGLU: ``w3(ffn_ln(SiLU(w1 x) * w2 x))``, ``ffn_ln`` = sub-LN
    (timm's ``SwiGLU``: fc1_g, fc1_x, norm, fc2)."""

    def __init__(self, dim: int, hidden: int, sub_ln: bool = True, norm_eps: float = 1e-6,
                 force_fp32: bool = False):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden)
        self.w2 = nn.Linear(dim, hidden)
        self.ffn_ln = LayerNorm(hidden, norm_eps, force_fp32) if sub_ln else None
        self.w3 = nn.Linear(hidden, dim)

    @property
    def out_proj(self) -> nn.Linear:
        return self.w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.silu(self.w1(x)) * self.w2(x)
        return self.w3(x if self.ffn_ln is None else self.ffn_ln(x))


def build_mlp(mlp_type: str, dim: int, hidden: int, sub_ln: bool, norm_eps: float,
              force_fp32: bool) -> nn.Module:
    if mlp_type == 'gelu':
        return Mlp(dim, hidden, sub_ln, norm_eps, force_fp32)
    if mlp_type == 'swiglu':
        return SwiGLU(dim, hidden, sub_ln, norm_eps, force_fp32)
    if mlp_type == 'swiglu_fused':
        if sub_ln:
            raise ValueError('the fused SwiGLU (w12) has no sub-LN: use mlp_type="swiglu" '
                             '(w1, w2, ffn_ln) with sub_ln=True, as EVA-02 B/L')
        return SwiGLUFused(dim, hidden)
    raise ValueError(f'mlp_type must be one of {MLP_TYPES}, got {mlp_type!r}')


class DropPath(nn.Module):
    """Stochastic depth per sample."""

    def __init__(self, prob: float = 0.):
        super().__init__()
        self.prob = prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.prob == 0. or not self.training:
            return x
        keep = 1 - self.prob
        mask = x.new_empty((x.shape[0], ) + (1, ) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f'prob={self.prob}'


class Block(nn.Module):
    """Pre-norm transformer block; optional window attention over the (h, w) patch grid.

    With ``window_size > 0`` the block expects patch tokens only (no cls token) and the
    grid ``hw``; it pads the grid to whole windows, attends within each window and crops.
    ``layer_scale_init_value``: per-channel ``gamma_1``/``gamma_2`` on both branches (BEiT
    layer scale; EVA-01 seg "layerscale" variant, init 1.0).
    ``post_norm``: residual post-norm, ``x + norm1(attn(x))`` and ``x + norm2(mlp(x))``
    (EVA-02-CLIP E/14, rei ``postnorm``; timm ``EvaBlockPostNorm``), same parameters.
    """

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int, drop_path: float = 0.,
                 qv_bias: bool = True, norm_eps: float = 1e-6, window_size: int = 0,
                 rel_pos_size: Optional[Tuple[int, int]] = None,
                 fp32_attn_and_norm: bool = False, rel_pos_interp: str = 'linear',
                 rel_pos_bias_size: Optional[Tuple[int, int]] = None,
                 layer_scale_init_value: Optional[float] = None, mlp_type: str = 'gelu',
                 sub_ln: bool = False, inner_attn_ln: bool = False, post_norm: bool = False):
        super().__init__()
        self.post_norm = post_norm
        if window_size and rel_pos_bias_size:
            raise ValueError('the BEiT relative-position bias table needs global attention '
                             '(window_size=0)')
        self.window_size = window_size
        self.norm1 = LayerNorm(dim, norm_eps, fp32_attn_and_norm)
        self.attn = Attention(
            dim, num_heads, qv_bias,
            rel_pos_size=(window_size, window_size) if (rel_pos_size and window_size) else rel_pos_size,
            fp32_attention=fp32_attn_and_norm, rel_pos_interp=rel_pos_interp,
            rel_pos_bias_size=rel_pos_bias_size, split_qkv=sub_ln, inner_norm=inner_attn_ln,
            norm_eps=norm_eps)
        self.drop_path = DropPath(drop_path)
        self.norm2 = LayerNorm(dim, norm_eps, fp32_attn_and_norm)
        self.mlp = build_mlp(mlp_type, dim, mlp_hidden, sub_ln, norm_eps, fp32_attn_and_norm)
        self.layer_scale_init_value = layer_scale_init_value
        if layer_scale_init_value is not None:
            self.gamma_1 = nn.Parameter(torch.full((dim, ), float(layer_scale_init_value)))
            self.gamma_2 = nn.Parameter(torch.full((dim, ), float(layer_scale_init_value)))
        else:
            self.gamma_1 = self.gamma_2 = None

    def forward(self, x: torch.Tensor, hw: Optional[Tuple[int, int]] = None,
                rope: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
        """``rope``: tables of the attention grid (per window in window blocks)."""
        y = x if self.post_norm else self.norm1(x)
        if self.window_size:  # ``hw`` is checked once per forward by EVAViT.forward_blocks
            b, _, c = y.shape
            win, padded = window_partition(y.view(b, hw[0], hw[1], c), self.window_size)
            win = self.attn(win.view(win.shape[0], -1, c), (self.window_size, self.window_size),
                            rope)
            y = window_unpartition(win.view(-1, self.window_size, self.window_size, c),
                                   self.window_size, padded, hw).view(b, -1, c)
        else:
            y = self.attn(y, hw, rope)
        if self.post_norm:
            y = self.norm1(y)
        if self.gamma_1 is not None:  # in the branch's dtype: no fp32 promotion under AMP
            y = y * self.gamma_1.to(y.dtype)
        x = x + self.drop_path(y)
        y = self.norm2(self.mlp(x)) if self.post_norm else self.mlp(self.norm2(x))
        if self.gamma_2 is not None:
            y = y * self.gamma_2.to(y.dtype)
        return x + self.drop_path(y)


class PatchEmbed(nn.Module):
    """Conv patch embedding. 5-D video input (B, C, T, H, W) is embedded frame by frame,
    which is exactly EVA-01's tubelet-1 Conv3d with the 2-D kernel inflated."""

    def __init__(self, in_channels: int, dim: int, patch_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, dim, patch_size, patch_size)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, ...]]:
        frames = None
        if x.ndim == 5:
            b, c, frames = x.shape[:3]
            x = x.transpose(1, 2).reshape(b * frames, c, *x.shape[3:])
        if x.ndim != 4:
            raise ValueError(f'expected an image batch (B, C, H, W) or a video batch '
                             f'(B, C, T, H, W), got shape {tuple(x.shape)}')
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f'input size {h}x{w} is not a multiple of the patch size '
                             f'{self.patch_size}')
        x = self.proj(x)
        grid = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        if frames is None:
            return x, tuple(grid)
        return x.reshape(-1, frames * x.shape[1], x.shape[2]), (frames, *grid)


@MODELS.register_module()
class EVAViT(BaseModule):
    """EVA-01 / EVA-02 ViT backbone.

    Args:
        arch: ``giant``/``large``/``base``/``small``/``tiny`` (EVA-01),
            ``eva02-tiny``/``-small``/``-base``/``-large``, or a dict with ``embed_dims``,
            ``num_layers``, ``num_heads``, ``feedforward_channels`` and optionally
            ``mlp_type`` (``gelu``, ``swiglu_fused`` = EVA-02 Ti/S ``w12``, ``swiglu`` =
            B/L ``w1``/``w2``), ``sub_ln`` (``ffn_ln`` in the MLP + separate q/k/v, B/L),
            ``rope`` (2-D RoPE on q/k of the patch tokens in every block),
            ``inner_attn_ln`` (EVA-02-CLIP towers: LN before the attention ``proj``) and
            ``post_norm`` (EVA-02-CLIP E/14: residual post-norm blocks).
            EVA-02-CLIP presets: ``eva02-clip-base`` (B/16: ``patch_size=16``),
            ``eva02-clip-large`` (L/14, L/14-336), ``eva02-clip-enormous`` (E/14, E/14+).
        img_size: training input size; sets the position grid (and rel-pos tables).
        patch_size: 14 (EVA-01 MIM/cls/video) or 16 (det/seg, converted weights).
        pos_embed_size: input size of the stored position table when it should stay at the
            pretraining grid and be resized every forward (ViTDet: 224). Default ``img_size``.
        num_frames: video mode; the position table holds ``num_frames`` tiled spatial grids
            (with RoPE, every frame is rotated by the 2-D table of its grid).
        out_indices: blocks whose outputs are returned (negative counts from the end).
        out_type: ``raw`` (B, 1+N, C), ``cls_token`` (B, C), ``featmap`` (B, C, H, W) or
            ``avg_featmap`` (mean of patch tokens + ``fc_norm``, EVA-01 fine-tuning).
        final_norm: LayerNorm on the last block's output (MIM, linear probe, CLIP).
        with_cls_token: False for detection.
        with_mask_token: adds the MIM ``mask_token`` used by ``forward(x, mask)``.
        window_size / global_block_indices: window attention in every block but the global ones.
        use_rel_pos: decomposed relative positions (zero-init) in every block.
        rel_pos_interp: run-time resizing of the rel-pos tables to another grid: ``linear``
            (ViTDet, default) or ``beit`` (EVA-01's 1280-trained -> 1536 evaluation).
        use_rel_pos_bias: a BEiT relative-position bias table (zero-init, ``(2h-1)(2w-1)+3``
            rows x heads, cls rows included) in every block, over the ``img_size`` patch grid
            (EVA-01 seg variant B). Global attention only; inputs must be ``img_size`` and a
            checkpoint table for another grid is refused (no BEiT resize).
        layer_scale_init_value: per-channel layer scale ``gamma_1/gamma_2`` in every block,
            initialised to this value (EVA-01 seg variant B: 1.0). ``None``: no layer scale.
        fp32_attn_and_norm: attention logits and LayerNorm in fp32 under autocast (EVA-01).
        with_cp: activation checkpointing per block.
        freeze_patch_embed: EVA-01 cls/det fine-tunes freeze the patch embedding.
        frozen_stages: freeze patch/pos/cls embeddings and the first ``frozen_stages`` blocks
            (``num_layers`` also freezes the final norm: linear probing).
        init_std: init std (EVA-01: 0.015 pretraining, 0.02 fine-tuning; EVA-02: 0.02).
            Default: 0.015 for ``init_type='eva01'``, 0.02 for ``'eva02'``.
        rope_ref_size: ``pt_seq_len``: the token grid RoPE positions are scaled to (EVA-02:
            16 = 224 / 14, also for patch 16 and in windows), so a 224-pretrained model runs at
            336 / 448 / 1024. The tables are computed for each input grid (each window in
            window blocks), never stored or loaded.
        init_type: ``eva01`` (trunc-normal +-1 sigma, ``fix_init_weight``) or ``eva02``
            (xavier-normal linears, xavier-uniform patch kernel, sub-LN rescale by
            sqrt(ln(2 depth))). Default: ``eva02`` for RoPE/SwiGLU archs, else ``eva01``.
        patch_embed_grad_scale: gradient multiplier of the patch embedding, forward unchanged
            (EVA-02 MIM ``stop_grad_conv1``: 0.1; freezing is ``freeze_patch_embed``).
    """

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 img_size: Union[int, Sequence[int]] = 224,
                 patch_size: int = 14,
                 in_channels: int = 3,
                 pos_embed_size: Optional[Union[int, Sequence[int]]] = None,
                 num_frames: Optional[int] = None,
                 out_indices: Union[int, Sequence[int]] = -1,
                 out_type: str = 'raw',
                 final_norm: bool = True,
                 with_cls_token: bool = True,
                 with_mask_token: bool = False,
                 qv_bias: bool = True,
                 drop_path_rate: float = 0.,
                 norm_eps: float = 1e-6,
                 window_size: int = 0,
                 global_block_indices: Sequence[int] = (),
                 use_rel_pos: bool = False,
                 rel_pos_interp: str = 'linear',
                 use_rel_pos_bias: bool = False,
                 layer_scale_init_value: Optional[float] = None,
                 fp32_attn_and_norm: bool = False,
                 with_cp: bool = False,
                 freeze_patch_embed: bool = False,
                 frozen_stages: int = -1,
                 init_std: Optional[float] = None,
                 rope_ref_size: Union[int, Sequence[int]] = 16,
                 init_type: Optional[str] = None,
                 patch_embed_grad_scale: float = 1.,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        arch = parse_arch(arch)
        self.arch = arch
        if out_type not in OUT_TYPES:
            raise ValueError(f'out_type must be one of {OUT_TYPES}, got {out_type!r}')
        if out_type == 'cls_token' and not with_cls_token:
            raise ValueError('out_type="cls_token" needs with_cls_token=True')
        self.embed_dims = dim = arch['embed_dims']
        self.num_layers = arch['num_layers']
        self.num_heads = arch['num_heads']
        self.patch_size = patch_size
        self.img_size = _pair(img_size)
        self.grid_size = tuple(s // patch_size for s in self.img_size)
        self.num_frames = num_frames
        pos_size = _pair(pos_embed_size) if pos_embed_size else self.img_size
        self.pos_grid = tuple(s // patch_size for s in pos_size)
        if num_frames:
            self.pos_grid = (num_frames, *self.pos_grid)
        self.out_type = out_type
        self.with_cls_token = with_cls_token
        self.num_extra_tokens = int(with_cls_token)
        self.mlp_type, self.sub_ln = arch['mlp_type'], arch['sub_ln']
        self.use_rope = arch['rope']
        self.rope_ref_size = _pair(rope_ref_size)
        if init_type is None:
            init_type = 'eva02' if self.use_rope or self.mlp_type != 'gelu' else 'eva01'
        if init_type not in INIT_TYPES:
            raise ValueError(f'init_type must be one of {INIT_TYPES}, got {init_type!r}')
        self.init_type = init_type
        self.init_std = init_std if init_std is not None else (
            0.02 if init_type == 'eva02' else 0.015)
        if self.use_rope and use_rel_pos:
            raise ValueError('EVA-02 uses RoPE instead of the decomposed rel-pos tables (its '
                             'det config passes use_rel_pos=True but never uses it): set '
                             'use_rel_pos=False')
        self.with_cp = with_cp
        self.patch_embed_grad_scale = patch_embed_grad_scale
        self.freeze_patch_embed = freeze_patch_embed
        self.frozen_stages = frozen_stages

        self.patch_embed = PatchEmbed(in_channels, dim, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if with_cls_token else None
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim)) if with_mask_token else None
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.num_extra_tokens + math.prod(self.pos_grid), dim))

        if window_size and with_cls_token:
            raise ValueError('window attention works on patch tokens: set with_cls_token=False')
        if use_rel_pos_bias and (window_size or num_frames):
            raise ValueError('use_rel_pos_bias (BEiT table over the image patch grid) needs '
                             'global attention on images: window_size=0, num_frames=None')
        self.use_rel_pos_bias = use_rel_pos_bias
        global_blocks = set(_block_indices(global_block_indices, self.num_layers,
                                           'global_block_indices'))
        dpr = [drop_path_rate * i / max(self.num_layers - 1, 1) for i in range(self.num_layers)]
        self.blocks = nn.ModuleList([
            Block(dim, self.num_heads, arch['feedforward_channels'], dpr[i], qv_bias, norm_eps,
                  window_size=0 if i in global_blocks else window_size,
                  rel_pos_size=self.grid_size if use_rel_pos else None,
                  fp32_attn_and_norm=fp32_attn_and_norm, rel_pos_interp=rel_pos_interp,
                  rel_pos_bias_size=self.grid_size if use_rel_pos_bias else None,
                  layer_scale_init_value=layer_scale_init_value, mlp_type=self.mlp_type,
                  sub_ln=self.sub_ln, inner_attn_ln=arch['inner_attn_ln'],
                  post_norm=arch['post_norm'])
            for i in range(self.num_layers)
        ])
        self.norm = LayerNorm(dim, norm_eps, fp32_attn_and_norm) if final_norm else None
        self.fc_norm = LayerNorm(dim, norm_eps, fp32_attn_and_norm) \
            if out_type == 'avg_featmap' else None

        if isinstance(out_indices, int):
            out_indices = [out_indices]
        self.out_indices = _block_indices(out_indices, self.num_layers, 'out_indices')
        # window / rel-pos blocks need patch tokens only and their (h, w) grid
        self._needs_hw = any(blk.window_size or blk.attn.rel_pos_size for blk in self.blocks)
        self._register_load_state_dict_pre_hook(self._adapt_checkpoint)
        self._freeze()

    # ------------------------------------------------------------------ init / freezing
    def init_weights(self):
        """EVA's init, then the ``init_cfg=Pretrained`` weights if the config names some (a
        dict or an entry of mmengine's list form), read by the one loader and checked by the
        structural fit rule as a backbone init: every block's attention and MLP weights."""
        self._eva_init()  # new params (rel-pos, head) start from EVA's init
        cfgs = self.init_cfg if isinstance(self.init_cfg, (list, tuple)) else [self.init_cfg]
        pretrained = [c for c in cfgs if isinstance(c, dict) and c.get('type') == 'Pretrained']
        others = [c for c in cfgs if c is not None and c not in pretrained]
        if others:
            from mmengine.model import initialize
            initialize(self, others)
        for c in pretrained:
            self.load_pretrained(c['checkpoint'], c.get('prefix'))
        self._is_init = True

    def load_pretrained(self, checkpoint: str, prefix: Optional[str] = None):
        """Backbone weights from ``checkpoint`` (keys under ``prefix``, e.g. ``backbone.``,
        when the file holds a whole model)."""
        from ..loader import check_fit
        from ..loader import read_checkpoint, unwrap_state_dict
        sd = unwrap_state_dict(read_checkpoint(checkpoint), checkpoint)
        if prefix:
            sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
            if not sd:
                raise KeyError(f'{checkpoint}: no tensors under prefix {prefix!r} '
                               '(init_cfg=Pretrained)')
        check_fit(self, sd, f'{checkpoint} (init_cfg=Pretrained'
                  + (f', prefix {prefix!r})' if prefix else ')'), head='optional')
        missing, unexpected = self.load_state_dict(sd, strict=False)
        from mmengine.logging import print_log
        print_log(f'loaded {checkpoint} into {type(self).__name__}'
                  + (f' ({len(missing)} tensors kept from the init: {missing[:5]})'
                     if missing else ''), logger='current')

    def _eva_init(self):
        if self.init_type == 'eva02':
            return self._eva02_init()
        std = self.init_std
        for name, m in self.named_modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                trunc_normal_sigma_(m.weight, std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for p in (self.pos_embed, self.cls_token, self.mask_token):
            if p is not None:
                trunc_normal_sigma_(p, std)
        for layer_id, blk in enumerate(self.blocks, start=1):  # EVA-01 fix_init_weight
            blk.attn.proj.weight.data.div_(math.sqrt(2.0 * layer_id))
            blk.mlp.out_proj.weight.data.div_(math.sqrt(2.0 * layer_id))
            self._init_block_extras(blk)

    def _eva02_init(self):
        """EVA-02 pretraining init (asuka/modeling_pretrain.py:114-154): pos/cls/mask
        trunc-normal +-1 sigma (std 0.02), xavier-normal linears with zero bias, LN 1/0, the
        patch kernel xavier-uniform on its (D, 3p^2) view (conv bias left as built); with
        sub-LN every ``mlp.fc*``/``mlp.w*``/``attn.proj``/``attn.v_proj`` tensor x
        sqrt(ln(2 depth))."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.data.view(w.shape[0], -1))
        for p in (self.pos_embed, self.cls_token, self.mask_token):
            if p is not None:
                trunc_normal_sigma_(p, self.init_std)
        if self.sub_ln:
            scale = math.sqrt(math.log(2 * self.num_layers))
            for name, p in self.named_parameters():
                if any(t in name for t in ('mlp.fc', 'mlp.w', 'attn.proj', 'attn.v_proj')):
                    p.data.mul_(scale)
        for blk in self.blocks:
            self._init_block_extras(blk)

    @staticmethod
    def _init_block_extras(blk):
        """Zero q/v biases and rel-pos tables, layer scale at its value (both inits)."""
        if blk.attn.q_bias is not None:
            nn.init.zeros_(blk.attn.q_bias)
            nn.init.zeros_(blk.attn.v_bias)
        if blk.attn.rel_pos_size:
            nn.init.zeros_(blk.attn.rel_pos_h)
            nn.init.zeros_(blk.attn.rel_pos_w)
        if blk.attn.rel_pos_bias_size:
            nn.init.zeros_(blk.attn.relative_position_bias_table)
        if blk.gamma_1 is not None:
            nn.init.constant_(blk.gamma_1, blk.layer_scale_init_value)
            nn.init.constant_(blk.gamma_2, blk.layer_scale_init_value)

    def _freeze(self):
        frozen = []
        if self.freeze_patch_embed or self.frozen_stages >= 0:
            frozen.append(self.patch_embed)
        if self.frozen_stages >= 0:
            frozen += list(self.blocks[:self.frozen_stages])
            if self.frozen_stages >= self.num_layers and self.norm is not None:
                frozen.append(self.norm)  # linear probing: everything but the head
            for p in (self.pos_embed, self.cls_token):
                if p is not None:
                    p.requires_grad_(False)
        for m in frozen:
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze()
        return self

    # ------------------------------------------------------------------ layer decay
    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """EVA-01 layer-decay id: embeddings 0, block k -> k + 1, everything else last.

        Returns ``(layer_id, num_layers + 2)`` as mmpretrain's layer-decay constructor expects.
        """
        num = self.num_layers + 2
        if not param_name.startswith(prefix):
            return num - 1, num
        name = param_name[len(prefix):]
        if name.split('.')[0] in ('cls_token', 'mask_token', 'pos_embed', 'patch_embed'):
            return 0, num
        if name.startswith('blocks.'):
            return int(name.split('.')[1]) + 1, num
        return num - 1, num

    # ------------------------------------------------------------------ checkpoints
    def _adapt_checkpoint(self, state_dict, prefix, *args, **kwargs):
        """Make a checkpoint from another resolution / frame count / token layout fit, with
        the state-dict functions the converters use too (:mod:`.vit_adapt`): stored RoPE
        tables dropped, the position table fitted (resized, tiled over frames, cls slot
        dropped), a tubelet-1 kernel squeezed, rel-pos tables resized, BEiT tables checked."""
        own = {k: v for k, v in state_dict.items() if k.startswith(prefix)}
        sd = drop_rope_tables(own)
        key = prefix + 'pos_embed'
        if key in sd:
            sd[key] = fit_pos_embed(sd[key], self.pos_grid, self.num_extra_tokens,
                                    self.num_frames, self.embed_dims)
        key = prefix + 'patch_embed.proj.weight'
        if key in sd:
            sd[key] = squeeze_tubelet(sd[key], key)
        sd = fit_rel_pos(sd, {i: blk.attn.rel_pos_size for i, blk in enumerate(self.blocks)
                              if blk.attn.rel_pos_size}, prefix)
        for i, blk in enumerate(self.blocks):
            attn = blk.attn
            if attn.rel_pos_bias_size:
                index = attn.relative_position_index
                sd = check_rel_pos_bias(sd, f'{prefix}blocks.{i}.attn.',
                                        attn.relative_position_bias_table.shape,
                                        None if index.is_meta else index,
                                        attn.rel_pos_bias_size)
        for k in set(own) - set(sd):
            del state_dict[k]
        state_dict.update(sd)

    # ------------------------------------------------------------------ forward
    def embed(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None,
              cls_pos: bool = True) -> Tuple[torch.Tensor, Tuple[int, ...]]:
        """Patch embedding, mask token, cls token and position table (resized to the input).

        Returns ``(tokens, grid)``: tokens (B, extra + N, C) ready for :meth:`forward_blocks`
        and the patch grid ``(h, w)`` (``(t, h, w)`` for video). ``mask`` (B, h, w) or
        (B, h*w), True = masked: those patches become the mask token before the position
        embedding is added (BEiT/EVA-01 MIM). ``cls_pos=False`` leaves the cls token without
        its position slot (EVA-01's ViT-Adapter). All input checks of a forward happen here
        and in :meth:`forward_blocks`, not inside the blocks.
        """
        b = x.shape[0]
        x, grid = self.patch_embed(x)
        if self.patch_embed_grad_scale != 1.:  # same value, gradient x scale
            s = self.patch_embed_grad_scale
            x = x.detach() * (1. - s) + x * s
        if mask is not None:
            if self.mask_token is None:
                raise ValueError('a mask was given but the backbone has no mask token '
                                 '(with_mask_token=False)')
            w = mask.reshape(b, -1, 1).to(x.dtype)
            if w.shape[1] != x.shape[1]:
                raise ValueError(f'mask covers {w.shape[1]} patches, the input has {x.shape[1]}')
            x = x * (1 - w) + self.mask_token.to(x.dtype) * w
        self.check_rel_pos_bias_grid(grid)
        pos = self.pos_embed
        if tuple(grid) != self.pos_grid:
            pos = resize_pos_embed(pos, self.pos_grid, grid, self.num_extra_tokens)
        pos = pos.to(x.dtype)
        if self.cls_token is None:
            return x + pos, grid
        cls = self.cls_token.expand(b, -1, -1).to(x.dtype)
        if cls_pos:
            return torch.cat([cls, x], dim=1) + pos, grid
        return torch.cat([cls, x + pos[:, self.num_extra_tokens:]], dim=1), grid

    def forward_blocks(self, x: torch.Tensor, grid: Sequence[int], start: int = 0,
                       end: Optional[int] = None) -> torch.Tensor:
        """Run blocks ``start .. end - 1`` on tokens from :meth:`embed` (the one block loop:
        activation checkpointing per block with ``with_cp`` while training). The final norm is
        not applied here (see :meth:`forward_features`)."""
        end = self.num_layers if end is None else end
        if not 0 <= start <= end <= self.num_layers:
            raise IndexError(f'blocks [{start}, {end}) are outside 0..{self.num_layers}')
        n = self.num_extra_tokens + math.prod(grid)
        if x.ndim != 3 or x.shape[1] != n:
            raise ValueError(f'tokens {tuple(x.shape)} do not match the patch grid {tuple(grid)} '
                             f'(+{self.num_extra_tokens} cls): pass what embed() returned')
        hw = tuple(grid) if self.cls_token is None and len(grid) == 2 else None
        if self._needs_hw and hw is None:
            raise ValueError('window attention / relative positions need patch tokens only '
                             '(with_cls_token=False) on an image (h, w) grid')
        ropes = self.rope_tables(grid, x.device)
        for blk in self.blocks[start:end]:
            rope = ropes.get(blk.window_size)
            if self.with_cp and self.training and x.requires_grad:
                x = cp.checkpoint(blk, x, hw, rope, use_reentrant=False)
            else:
                x = blk(x, hw, rope)
        return x

    def rope_tables(self, grid: Sequence[int], device=None) -> dict:
        """RoPE ``(cos, sin)`` per block window size (0 = global: the input grid; w: one
        w x w window), scaled to ``rope_ref_size``; empty without RoPE.

        Video ``(t, h, w)``: every frame's tokens get the image table of their ``(h, w)``
        position (the rotation EVA-02 was pretrained with); frame order comes from the
        position table tiled over frames, as in EVA-01 video."""
        if not self.use_rope:
            return {}
        head_dim = self.embed_dims // self.num_heads
        sizes = {blk.window_size for blk in self.blocks}
        frames, hw = (grid[0], tuple(grid[1:])) if len(grid) == 3 else (1, tuple(grid))
        tables = {ws: rope_2d((ws, ws) if ws else hw, head_dim, self.rope_ref_size,
                              device=device) for ws in sizes}
        if frames == 1:
            return tables
        return {ws: (cos.repeat(frames, 1), sin.repeat(frames, 1))
                for ws, (cos, sin) in tables.items()}

    def forward_features(self, x: torch.Tensor,
                         mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Tokens (B, extra + N, C) after the last block and the final norm (if any), as
        timm's ``forward_features``; independent of ``out_indices`` / ``out_type``."""
        x, grid = self.embed(x, mask)
        x = self.forward_blocks(x, grid)
        return x if self.norm is None else self.norm(x)

    def forward_intermediates(self, x: torch.Tensor,
                              indices: Optional[Union[int, Sequence[int]]] = None,
                              mask: Optional[torch.Tensor] = None, norm: bool = False,
                              output_fmt: Optional[str] = None) -> List[torch.Tensor]:
        """Outputs of several blocks in one pass (timm's ``forward_intermediates``).

        ``indices``: block indices (negative count from the end), an int ``n`` = the last
        ``n`` blocks (timm), None = ``out_indices``; out of range is an error. ``norm``:
        apply the final norm to each output. ``output_fmt``: one of ``OUT_TYPES`` (default
        ``out_type``). Blocks after the last index are not run.
        """
        if indices is None:
            indices = self.out_indices
        elif isinstance(indices, int):
            if not 0 < indices <= self.num_layers:
                raise IndexError(f'indices={indices}: asks for the last {indices} of '
                                 f'{self.num_layers} blocks')
            indices = list(range(self.num_layers - indices, self.num_layers))
        else:
            indices = _block_indices(indices, self.num_layers, 'indices')
        if norm and self.norm is None:
            raise ValueError('norm=True needs the final norm (final_norm=True)')
        tokens, grid = self.embed(x, mask)
        return self._collect(tokens, grid, indices, lambda i: norm, output_fmt or self.out_type)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> tuple:
        """One output per ``out_indices`` block in the ``out_type`` format; the final norm
        applies to the last block's output only. ``mask``: see :meth:`embed`."""
        tokens, grid = self.embed(x, mask)
        last = self.num_layers - 1
        return tuple(self._collect(tokens, grid, self.out_indices,
                                   lambda i: i == last and self.norm is not None,
                                   self.out_type))

    def _collect(self, x, grid, indices, use_norm, fmt) -> List[torch.Tensor]:
        outs, start = [], 0
        for i in indices:
            x = self.forward_blocks(x, grid, start, i + 1)
            start = i + 1
            outs.append(self.format_output(self.norm(x) if use_norm(i) else x, grid, fmt))
        return outs

    def check_rel_pos_bias_grid(self, grid: Sequence[int]) -> None:
        """The BEiT tables cover the ``img_size`` patch grid only (clear error otherwise)."""
        if self.use_rel_pos_bias and tuple(grid) != self.grid_size:
            raise ValueError(f'use_rel_pos_bias: the bias tables are for the {self.grid_size} '
                             f'patch grid of img_size {self.img_size}, the input gives {tuple(grid)}')

    def format_output(self, x: torch.Tensor, grid: Sequence[int],
                      fmt: Optional[str] = None) -> torch.Tensor:
        """Tokens (B, extra + N, C) -> ``fmt`` (an ``OUT_TYPES`` entry; default ``out_type``)."""
        fmt = fmt or self.out_type
        if fmt == 'raw':
            return x
        if fmt not in OUT_TYPES:
            raise ValueError(f'output format must be one of {OUT_TYPES}, got {fmt!r}')
        if fmt == 'cls_token':
            if self.cls_token is None:
                raise ValueError('output format "cls_token" needs with_cls_token=True')
            return x[:, 0]
        patches = x[:, self.num_extra_tokens:]
        if fmt == 'avg_featmap':
            if self.fc_norm is None:
                raise ValueError('output format "avg_featmap" needs the fc_norm of '
                                 'out_type="avg_featmap"')
            return self.fc_norm(patches.mean(dim=1))
        b, _, c = patches.shape
        return patches.transpose(1, 2).reshape(b, c, *grid)


def _block_indices(indices: Sequence[int], num_layers: int, name: str) -> List[int]:
    """Sorted block indices (negative count from the end); out of range is an error
    (``out_indices=40`` on 40 blocks is not block 0)."""
    for i in indices:
        if not -num_layers <= i < num_layers:
            raise IndexError(f'EVAViT {name}: block {i} is out of range for {num_layers} blocks '
                             f'(valid: {-num_layers}..{num_layers - 1})')
    return sorted(i % num_layers for i in indices)


def parse_arch(arch: Union[str, dict]) -> dict:
    """A preset name or a dict -> the full arch dict (optional keys filled with EVA-01's)."""
    if isinstance(arch, str):
        if arch not in ARCH_ZOO:
            raise KeyError(f'unknown EVAViT arch {arch!r}; choose from {sorted(ARCH_ZOO)} '
                           'or pass a dict')
        arch = ARCH_ZOO[arch]
    missing = set(ARCH_REQUIRED) - set(arch)
    if missing:
        raise KeyError(f'EVAViT arch dict lacks {sorted(missing)}')
    unknown = set(arch) - set(ARCH_REQUIRED) - set(ARCH_OPTIONAL)
    if unknown:
        raise KeyError(f'EVAViT arch dict has unknown keys {sorted(unknown)}; known: '
                       f'{list(ARCH_REQUIRED) + list(ARCH_OPTIONAL)}')
    arch = {**ARCH_OPTIONAL, **arch}
    if arch['mlp_type'] not in MLP_TYPES:
        raise ValueError(f'arch mlp_type must be one of {MLP_TYPES}, got {arch["mlp_type"]!r}')
    return arch


def _pair(v) -> Tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)
