"""EVA-01 semantic-segmentation checkpoints (mmseg 0.x, ViT-Adapter + Mask2Former) -> ours.

Released files: ``eva_sem_seg_mask2former_{cocostuff_53p4,ade_ss61p5_ms62p3}.pth``, an mmseg
0.x ``{'meta', 'state_dict'}`` container. Renames:

* ``backbone.{cls_token,pos_embed,patch_embed,blocks}`` -> ``backbone.vit.*`` (our adapter
  drives an unmodified EVAViT); ``backbone.{level_embed,spm,interactions,up,norm1-4}`` keep
  their names.
* mmcv 1.x transformer layers -> mmdet 3.x: pixel-decoder encoder ``attentions.0`` ->
  ``self_attn``; Mask2Former decoder ``attentions.0`` (cross, first in the operation order)
  -> ``cross_attn`` and ``attentions.1`` -> ``self_attn``; ``ffns.0`` -> ``ffn``.
* ``decode_head.conv_seg`` (built by mmseg 0.x's BaseDecodeHead, never used) is dropped.

The "relpos_layerscale_9dec" release (``..._relpos_layerscale_9dec_*.pth``) has, per block,
``attn.relative_position_bias_table`` and ``gamma_1``/``gamma_2`` (EVAViT's
``use_rel_pos_bias`` / ``layer_scale_init_value``: same names, moved under ``backbone.vit.``)
and BEiT's persistent ``attn.relative_position_index``: EVAViT rebuilds that index (a
non-persistent buffer), so each one is checked against BEiT's rule for its grid and dropped.
"""
import math
import re
from typing import Dict

import torch

from . import drop_rope, register_format, rename_keys, require_mapped
from .backbone import eva01_vit_problem, eva02_vit_problem

VIT_KEYS = ('cls_token', 'pos_embed', 'patch_embed.', 'blocks.')
ADAPTER_KEYS = ('level_embed', 'spm.', 'interactions.', 'up.', 'norm1.', 'norm2.', 'norm3.',
                'norm4.')
INDEX_KEY = re.compile(r'backbone\.blocks\.\d+\.attn\.relative_position_index')


SEG_BLOCK_ITEMS = ('attn.relative_position_bias_table', 'attn.relative_position_index',
                   'gamma_1', 'gamma_2')  # the relpos_layerscale_9dec release


def _vit_problem(sd):
    vit = {k: v for k, v in sd.items() if k.startswith('backbone.') and
           k[len('backbone.'):].startswith(VIT_KEYS)}
    return eva01_vit_problem(vit, 'backbone.', extra_block_items=SEG_BLOCK_ITEMS)


def _is_eva_seg(sd: Dict[str, torch.Tensor]) -> bool:
    """ViT-Adapter (``backbone.interactions``) + Mask2Former (``decode_head``) around an
    EVA-01 ViT."""
    return (any(k.startswith('backbone.interactions.') for k in sd)
            and any(k.startswith('decode_head.') for k in sd) and _vit_problem(sd) is None)


def _rename_head(key: str) -> str:
    key = re.sub(r'(pixel_decoder\.encoder\.layers\.\d+\.)attentions\.0\.', r'\1self_attn.', key)
    key = re.sub(r'(transformer_decoder\.layers\.\d+\.)attentions\.0\.', r'\1cross_attn.', key)
    key = re.sub(r'(transformer_decoder\.layers\.\d+\.)attentions\.1\.', r'\1self_attn.', key)
    return re.sub(r'(layers\.\d+\.)ffns\.0\.', r'\1ffn.', key)


@register_format('eva01-seg-adapter-mask2former', _is_eva_seg,
                 'eva_sem_seg_mask2former_{cocostuff_53p4,ade_ss61p5_ms62p3}.pth and their '
                 '_relpos_layerscale_9dec_ variants',
                 lambda sd: _vit_problem(sd)
                 if any(k.startswith('backbone.interactions.') for k in sd) else None)
def convert_eva_seg(sd: Dict[str, torch.Tensor], patch_size=None, **_) -> Dict[str, torch.Tensor]:
    """Official EVA-01 ViT-Adapter + Mask2Former state dict -> this project's EncoderDecoder."""
    if patch_size not in (None, 16):
        raise ValueError(f'EVA-01 segmentation checkpoints are patch 16; --patch-size '
                         f'{patch_size} cannot apply')
    out, unknown, expected_index = {}, [], {}
    for key, value in sd.items():
        if INDEX_KEY.fullmatch(key):
            _check_index(key, value, expected_index)
        elif key.startswith('backbone.'):
            name = key[len('backbone.'):]
            if name.startswith(VIT_KEYS):
                out['backbone.vit.' + name] = value
            elif name.startswith(ADAPTER_KEYS):
                out[key] = value
            else:
                unknown.append(key)
        elif key.startswith('decode_head.conv_seg.'):
            continue
        elif key.startswith('decode_head.'):
            out[_rename_head(key)] = value
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(f'unexpected keys in an EVA-01 segmentation checkpoint: {unknown[:8]}'
                       f'{" ..." if len(unknown) > 8 else ""}')
    return out


def _check_index(key: str, index: torch.Tensor, cache: dict) -> None:
    """An official ``relative_position_index`` must be BEiT's for a square grid (EVA-01 builds
    it from the 56x56 patch grid); EVAViT rebuilds it, so it is dropped once checked."""
    n = index.shape[0] - 1 if index.ndim == 2 and index.shape[0] == index.shape[1] else -1
    side = math.isqrt(n) if n > 0 else 0
    if side * side != n or side == 0:
        raise ValueError(f'{key}: shape {tuple(index.shape)} is not a BEiT index (1 + h*w '
                         'square over a square patch grid)')
    if side not in cache:
        from ..models.eva_vit import beit_relative_position_index  # lazy: keeps converters light
        cache[side] = beit_relative_position_index(side, side)
    if not torch.equal(index.long(), cache[side]):
        raise ValueError(f'{key}: values differ from BEiT\'s relative-position index of a '
                         f'{side}x{side} grid')


# ------------------------------------------------------------------ EVA-02 UperNet (mmseg 0.x)
# the official EVA2 backbone's fpn1..fpn4 (ConvT + SyncBN + GELU + ConvT, ConvT, identity,
# max-pool) are mmseg's Feature2Pyramid (rescales 4, 2, 1, 0.5), our neck
EVA02_SEG_RULES = [
    (r'^backbone\.fpn1\.([013])\.', r'neck.upsample_4x.\1.'),
    (r'^backbone\.fpn2\.0\.', 'neck.upsample_2x.0.'),
    (r'^backbone\.(cls_token|pos_embed|patch_embed\.|blocks\.)', r'backbone.\1'),
    # UPerHead / FCNHead keep their names from mmseg 0.x to 1.x (conv_seg is used)
    (r'^(decode_head|auxiliary_head)\.', r'\1.'),
]


def _eva02_seg_problem(sd):
    if 'backbone.fpn1.0.weight' not in sd or not any(k.startswith('decode_head.') for k in sd):
        return 'no backbone.fpn1 / decode_head'
    return eva02_vit_problem({k: v for k, v in sd.items() if not k.startswith(
        ('backbone.fpn', 'decode_head.', 'auxiliary_head.'))}, 'backbone.')


@register_format('eva02-seg-upernet', lambda sd: _eva02_seg_problem(sd) is None,
                 'EVA-02 mmseg UperNet: eva02_{B,L}_ade_seg_upernet_sz{512,640}.pth',
                 lambda sd: _eva02_seg_problem(sd) if 'backbone.fpn1.0.weight' in sd else None)
def convert_eva02_seg(sd: Dict[str, torch.Tensor], patch_size=None, dropped=None,
                      **_) -> Dict[str, torch.Tensor]:
    """Official EVA-02 UperNet -> our ``EVAEncoderDecoder``: ``EVAViT`` (``eva02-*``, cls
    token, no final norm) + ``Feature2Pyramid`` neck + ``UPerHead`` + ``FCNHead``; RoPE
    tables dropped."""
    if patch_size not in (None, 16):
        raise ValueError(f'EVA-02 segmentation checkpoints are patch 16; --patch-size '
                         f'{patch_size} cannot apply')
    out, left = rename_keys(drop_rope(sd, dropped), EVA02_SEG_RULES)
    require_mapped('eva02-seg-upernet', left)
    return out
