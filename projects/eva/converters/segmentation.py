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

The "relpos_layerscale_9dec" variant (BEiT relative-position tables and layer scale in every
block) has no counterpart in EVAViT and is refused with that reason.
"""
import re
from typing import Dict

import torch

from . import register_format

VIT_KEYS = ('cls_token', 'pos_embed', 'patch_embed.', 'blocks.')
ADAPTER_KEYS = ('level_embed', 'spm.', 'interactions.', 'up.', 'norm1.', 'norm2.', 'norm3.',
                'norm4.')
VARIANT_B_MARKERS = ('relative_position_bias_table', 'relative_position_index', '.gamma_1',
                     '.gamma_2')


def _is_eva_seg(sd: Dict[str, torch.Tensor]) -> bool:
    return (any(k.startswith('backbone.interactions.') for k in sd)
            and any(k.startswith('decode_head.') for k in sd))


def _rename_head(key: str) -> str:
    key = re.sub(r'(pixel_decoder\.encoder\.layers\.\d+\.)attentions\.0\.', r'\1self_attn.', key)
    key = re.sub(r'(transformer_decoder\.layers\.\d+\.)attentions\.0\.', r'\1cross_attn.', key)
    key = re.sub(r'(transformer_decoder\.layers\.\d+\.)attentions\.1\.', r'\1self_attn.', key)
    return re.sub(r'(layers\.\d+\.)ffns\.0\.', r'\1ffn.', key)


@register_format('eva01-seg-adapter-mask2former', _is_eva_seg)
def convert_eva_seg(sd: Dict[str, torch.Tensor], patch_size=None, **_) -> Dict[str, torch.Tensor]:
    """Official EVA-01 ViT-Adapter + Mask2Former state dict -> this project's EncoderDecoder."""
    if patch_size not in (None, 16):
        raise ValueError(f'EVA-01 segmentation checkpoints are patch 16; --patch-size '
                         f'{patch_size} cannot apply')
    variant_b = sorted(k for k in sd if any(m in k for m in VARIANT_B_MARKERS))
    if variant_b:
        raise NotImplementedError(
            'this is the "relpos_layerscale_9dec" EVA-01 segmentation checkpoint: its blocks '
            f'carry BEiT relative-position tables and layer scale ({variant_b[0]}, ...), which '
            'EVAViT does not have; convert the 8-decoder-layer release instead')
    out, unknown = {}, []
    for key, value in sd.items():
        if key.startswith('backbone.'):
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
