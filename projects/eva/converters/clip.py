"""EVA-CLIP checkpoints -> ``EVACLIP``.

``eva_clip_psz14.pt`` (EVA-01, fp16, ``visual.*`` + ``text.*`` with ``text.logit_scale``) and
the later repack ``EVA01_CLIP_g_14_psz14_s11B.pt`` (top-level ``logit_scale``):

- ``visual.<ViT key>`` -> ``backbone.<ViT key>`` (EVAViT keeps EVA-01's names), with the final
  ``visual.norm`` -> ``backbone.norm``;
- ``visual.head`` (Linear 1408 -> 1024 with bias) -> ``clip_projection``;
- ``text.*`` -> ``text.*`` (same names), ``text.logit_scale`` / ``logit_scale`` ->
  ``logit_scale``; a stored causal ``attn_mask`` buffer is dropped (rebuilt at run time).

Every tensor is mapped or dropped for a stated reason; anything else is an error.
"""
import re
from typing import Dict

import torch

from ..models.vit_adapt import change_patch_size
from . import register_format, require_mapped
from .backbone import eva01_vit_problem, is_vit_key

TEXT_KEY = re.compile(
    r'^(token_embedding\.weight|positional_embedding|text_projection|ln_final\.(weight|bias)|'
    r'transformer\.resblocks\.\d+\.(ln_1|ln_2)\.(weight|bias)|'
    r'transformer\.resblocks\.\d+\.attn\.(in_proj_weight|in_proj_bias|out_proj\.(weight|bias))|'
    r'transformer\.resblocks\.\d+\.mlp\.(c_fc|c_proj)\.(weight|bias))$')
VISUAL_EXTRA = {'norm.weight': 'backbone.norm.weight', 'norm.bias': 'backbone.norm.bias',
                'head.weight': 'clip_projection.weight', 'head.bias': 'clip_projection.bias'}
DROPPED = {'text.attn_mask': 'causal mask buffer, rebuilt by the attention at run time'}


def _is_eva_clip(sd: Dict[str, torch.Tensor]) -> bool:
    """EVA-01 CLIP: an EVA-01 ViT under ``visual.`` and a CLIP text tower under ``text.``
    (EVA-02-CLIP's visual tower has RoPE / SwiGLU blocks and does not match)."""
    return 'text.token_embedding.weight' in sd and \
        eva01_vit_problem(sd, 'visual.') is None


@register_format('eva-clip', _is_eva_clip, 'eva_clip_psz14.pt, EVA01_CLIP_g_14_psz14_s11B.pt',
                 lambda sd: eva01_vit_problem(sd, 'visual.')
                 if 'text.token_embedding.weight' in sd else None)
def convert_eva_clip(sd, patch_size=None, **_):
    out, left = {}, []
    for key, value in sd.items():
        if key in DROPPED:
            continue
        if key in ('text.logit_scale', 'logit_scale'):
            if 'logit_scale' in out:
                raise KeyError('both text.logit_scale and logit_scale are present')
            out['logit_scale'] = value.reshape(())
        elif key.startswith('visual.'):
            name = key[len('visual.'):]
            if is_vit_key(name):
                out['backbone.' + name] = value
            elif name in VISUAL_EXTRA:
                out[VISUAL_EXTRA[name]] = value
            else:
                left.append(key)
        elif key.startswith('text.') and TEXT_KEY.match(key[len('text.'):]):
            out[key] = value
        else:
            left.append(key)
    require_mapped('eva-clip', left)
    required = ['backbone.pos_embed', 'backbone.norm.weight', 'clip_projection.weight',
                'text.text_projection', 'logit_scale']
    missing = [k for k in required if k not in out]
    if missing:
        raise KeyError(f'eva-clip checkpoint lacks {missing}')
    return change_patch_size(out, patch_size)
