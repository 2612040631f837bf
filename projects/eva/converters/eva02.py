"""EVA-02 checkpoints from timm (``eva02_*``) and mmpretrain (``ViTEVA02``) -> ``EVAViT``
with the EVA-02 options (``arch='eva02-*'``), plus a classifier head or a CLIP projection.

Every source tensor is mapped or dropped by a named rule; anything else is an error. RoPE
tables are never taken from a checkpoint: ``EVAViT`` computes them for the actual grid (timm
does not store them; mmpretrain stores tables whose formula differs from the official one,
see docs/eva02.md).
"""
import re
from typing import Dict, List, Tuple

import torch

from ..models.vit_adapt import change_patch_size, drop_rope_tables
from . import register_format, rename_keys, require_mapped

# (pattern, replacement) on timm's names; the first match wins.
TIMM_EVA02_RULES: List[Tuple[str, str]] = [
    (r'^(cls_token|pos_embed|patch_embed\.proj\.(weight|bias))$', r'backbone.\1'),
    (r'^blocks\.(\d+)\.(norm1|norm2)\.(weight|bias)$', r'backbone.blocks.\1.\2.\3'),
    # fused qkv (Ti/S) keeps timm's = the official names; split q/k/v (B/L) carry the biases
    (r'^blocks\.(\d+)\.attn\.(qkv\.weight|q_bias|v_bias|proj\.(weight|bias))$',
     r'backbone.blocks.\1.attn.\2'),
    (r'^blocks\.(\d+)\.attn\.([qkv])_proj\.weight$', r'backbone.blocks.\1.attn.\2_proj.weight'),
    (r'^blocks\.(\d+)\.attn\.([qv])_proj\.bias$', r'backbone.blocks.\1.attn.\2_bias'),
    (r'^blocks\.(\d+)\.attn\.norm\.(weight|bias)$', r'backbone.blocks.\1.attn.inner_attn_ln.\2'),
    # GluMlp (Ti/S): fc1 = w12 (gate rows first, as xformers), fc2 = w3
    (r'^blocks\.(\d+)\.mlp\.fc1\.(weight|bias)$', r'backbone.blocks.\1.mlp.w12.\2'),
    (r'^blocks\.(\d+)\.mlp\.fc2\.(weight|bias)$', r'backbone.blocks.\1.mlp.w3.\2'),
    # SwiGLU (B/L): fc1_g = w1 (gate), fc1_x = w2, norm = ffn_ln (sub-LN), fc2 = w3
    (r'^blocks\.(\d+)\.mlp\.fc1_g\.(weight|bias)$', r'backbone.blocks.\1.mlp.w1.\2'),
    (r'^blocks\.(\d+)\.mlp\.fc1_x\.(weight|bias)$', r'backbone.blocks.\1.mlp.w2.\2'),
    (r'^blocks\.(\d+)\.mlp\.norm\.(weight|bias)$', r'backbone.blocks.\1.mlp.ffn_ln.\2'),
    (r'^(norm|fc_norm)\.(weight|bias)$', r'backbone.\1.\2'),
]


def _is_timm_eva02(sd: Dict[str, torch.Tensor]) -> bool:
    """timm ``Eva`` with a SwiGLU MLP: ``SwiGLU`` (fc1_g) or ``GluMlp`` (fc1 twice fc2's
    input). EVA-01 (GELU: fc1 rows = fc2 columns) is converters/backbone.py's."""
    if 'blocks.0.mlp.fc1_g.weight' in sd:
        return 'patch_embed.proj.weight' in sd
    fc1, fc2 = sd.get('blocks.0.mlp.fc1.weight'), sd.get('blocks.0.mlp.fc2.weight')
    return fc1 is not None and fc2 is not None and 'patch_embed.proj.weight' in sd \
        and fc1.shape[0] == 2 * fc2.shape[1]


@register_format('timm-eva02', _is_timm_eva02,
                 'timm eva02_* (classifiers, MIM encoders, *_clip vision towers)')
def convert_timm_eva02(sd, patch_size=None, **_):
    """-> ``ImageClassifier`` (``backbone.*`` + ``head.fc``) for the mean-pooled classifiers
    (``fc_norm``), or backbone + final ``norm`` + ``clip_projection`` for the token-pooled
    CLIP towers (timm ``global_pool='token'``: no ``fc_norm``). RoPE tables are dropped
    (recomputed by EVAViT for every grid)."""
    head = 'clip_projection.' if 'fc_norm.weight' not in sd and 'norm.weight' in sd \
        else 'head.fc.'
    out, left = rename_keys(drop_rope_tables(sd),
                            TIMM_EVA02_RULES + [(r'^head\.(weight|bias)$', head + r'\1')])
    require_mapped('timm-eva02', left)
    return change_patch_size(out, patch_size)


# ------------------------------------------------------------------ mmpretrain ViTEVA02
def _is_mmpretrain_eva02(sd: Dict[str, torch.Tensor]) -> bool:
    return 'backbone.layers.0.mlp.w12.weight' in sd and 'backbone.layers.0.attn.qkv.weight' in sd


MMPRETRAIN_EVA02_RULES: List[Tuple[str, str]] = [
    (r'^backbone\.patch_embed\.projection\.(weight|bias)$', r'backbone.patch_embed.proj.\1'),
    (r'^backbone\.(cls_token|pos_embed)$', r'backbone.\1'),
    (r'^backbone\.layers\.(\d+)\.(norm1|norm2)\.(weight|bias)$', r'backbone.blocks.\1.\2.\3'),
    (r'^backbone\.layers\.(\d+)\.attn\.proj\.(weight|bias)$', r'backbone.blocks.\1.attn.proj.\2'),
    (r'^backbone\.layers\.(\d+)\.mlp\.w3\.(weight|bias)$', r'backbone.blocks.\1.mlp.w3.\2'),
    (r'^backbone\.layers\.(\d+)\.mlp\.norm\.(weight|bias)$', r'backbone.blocks.\1.mlp.ffn_ln.\2'),
    (r'^backbone\.ln1\.(weight|bias)$', r'backbone.norm.\1'),  # final_norm
    (r'^backbone\.ln2\.(weight|bias)$', r'backbone.fc_norm.\1'),  # out_type='avg_featmap'
    (r'^head\.fc\.(weight|bias)$', r'head.fc.\1'),
]


@register_format('mmpretrain-eva02', _is_mmpretrain_eva02,
                 'mmpretrain ViTEVA02 (vit-*-p14_eva02-*, eva02_to_mmpretrain.py)')
def convert_mmpretrain_eva02(sd, patch_size=None, **_):
    """mmpretrain fuses q/k/v (with a full bias whose k part the official weights leave at 0)
    and the SwiGLU ``w12`` in every size. With sub-LN (``mlp.norm``, B/L) both are split into
    EVA-02's ``q_proj``/``k_proj``/``v_proj`` and ``w1``/``w2``; the stored RoPE tables are
    dropped (recomputed with the official formula, docs/eva02.md)."""
    sub_ln = 'backbone.layers.0.mlp.norm.weight' in sd
    out, rest = {}, {}
    for k, v in drop_rope_tables(sd).items():
        m = re.match(r'^backbone\.layers\.(\d+)\.(attn\.qkv|mlp\.w12)\.(weight|bias)$', k)
        if m:
            dst = f'backbone.blocks.{m.group(1)}.'
            if m.group(2) == 'attn.qkv':
                q, kk, vv = v.chunk(3)
                if m.group(3) == 'bias':
                    if kk.abs().max() > 0:
                        raise ValueError(f'{k}: the k part of the qkv bias is non-zero '
                                         f'(max |b_k| = {kk.abs().max():.3g}); EVA-02 has no k '
                                         'bias and with RoPE it changes the logits')
                    out[dst + 'attn.q_bias'], out[dst + 'attn.v_bias'] = q, vv
                elif sub_ln:
                    for name, t in zip('qkv', (q, kk, vv)):
                        out[dst + f'attn.{name}_proj.weight'] = t
                else:
                    out[dst + 'attn.qkv.weight'] = v
            elif sub_ln:  # naive SwiGLU: the first half gates (w1), the second is w2
                w1, w2 = v.chunk(2)
                out[dst + f'mlp.w1.{m.group(3)}'], out[dst + f'mlp.w2.{m.group(3)}'] = w1, w2
            else:
                out[dst + f'mlp.w12.{m.group(3)}'] = v
        else:
            rest[k] = v
    renamed, left = rename_keys(rest, MMPRETRAIN_EVA02_RULES)
    require_mapped('mmpretrain-eva02', left)
    return change_patch_size({**out, **renamed}, patch_size)
