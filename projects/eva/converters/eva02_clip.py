"""EVA-02-CLIP releases -> ``EVACLIP`` with an EVA-02 image tower (``arch='eva02-clip-*'``).

``EVA02_CLIP_B_psz16_s8B.pt``, ``EVA02_CLIP_L_psz14_s4B.pt``, ``EVA02_CLIP_L_336_psz14_s6B.pt``
(and ``EVA02_CLIP_E_psz14_{s4B,plus_s9B}.pt``): rei's ``CustomCLIP`` state dict, fp16 (E+
bf16), bare or under ``model`` / ``module`` / ``state_dict`` (rei's loader accepts the same,
factory.py:80-106). rei's vision names are already ``EVAViT``'s, so:

- ``visual.<key>`` -> ``backbone.<key>`` (``cls_token``, ``pos_embed``, ``patch_embed``, the
  blocks: ``attn.{q,k,v}_proj`` + ``q_bias``/``v_bias``, ``attn.inner_attn_ln``,
  ``mlp.{w1,w2,ffn_ln,w3}``; E: ``attn.qkv``, ``mlp.fc1``/``fc2``), ``visual.norm`` ->
  ``backbone.norm``, ``visual.head`` (Linear D -> embed, bias) -> ``clip_projection``;
- ``visual.rope.freqs_*`` and ``visual.blocks.N.attn.rope.freqs_*`` (persistent buffers of
  rei's ``VisionRotaryEmbeddingFast``, one copy per block) are dropped: ``EVAViT`` computes
  the official table for the actual grid;
- ``text.*`` unchanged (the OpenAI-CLIP text transformer of ``EVACLIPTextTransformer``), a
  stored causal ``text.attn_mask`` dropped, ``logit_scale`` kept.

The E towers have EVA-01's tensor layout (fused qkv, GELU MLP, no RoPE); their post-norm is not
visible in the tensors, so an E file is detected as ``eva-clip`` (EVA-01), whose mapping is
the same; ``--format eva02-clip`` converts it too. Build it with ``arch='eva02-clip-enormous'``.
Every tensor is mapped or dropped by a named rule; anything else is an error.
"""
import re
from typing import Dict, Optional

import torch

from . import register_format
from .backbone import EVA01_BLOCK, EVA02_SPLIT_BLOCK, BlockLayout, change_patch_size, vit_problem
from .clip import TEXT_KEY

FORMAT = 'eva02-clip'
# rei's EVAVisionTransformer block with subln + naiveswiglu (B/L): EVA-02 B/L's block plus the
# sub-LN of the attention output
CLIP_BLOCK = BlockLayout(
    'EVA-02-CLIP B/L', 'attn.inner_attn_ln.weight', EVA02_SPLIT_BLOCK.hidden,
    lambda d, h: {**EVA02_SPLIT_BLOCK.shapes(d, h), 'attn.inner_attn_ln.weight': (d, ),
                  'attn.inner_attn_ln.bias': (d, )})
VISUAL_TOP = {'cls_token': 'backbone.cls_token', 'pos_embed': 'backbone.pos_embed',
              'patch_embed.proj.weight': 'backbone.patch_embed.proj.weight',
              'patch_embed.proj.bias': 'backbone.patch_embed.proj.bias',
              'norm.weight': 'backbone.norm.weight', 'norm.bias': 'backbone.norm.bias',
              'head.weight': 'clip_projection.weight', 'head.bias': 'clip_projection.bias'}
ROPE_KEY = re.compile(r'^visual\.(blocks\.\d+\.attn\.)?rope\.freqs_(cos|sin)$')
ROPE_REASON = ('RoPE table buffers of rei\'s VisionRotaryEmbeddingFast: EVAViT computes the '
               'official table for the input grid at run time')
MASK_REASON = 'causal mask buffer, rebuilt by the attention at run time'


def eva02_clip_problem(sd: Dict[str, torch.Tensor], allow_eva01_blocks: bool = False
                       ) -> Optional[str]:
    """Why ``sd`` is not an EVA-02-CLIP B/L file (None when it is): a CLIP text tower, the
    ``visual`` embeddings, final norm and head, nothing else under ``visual`` but blocks and
    RoPE tables, and complete sub-LN SwiGLU blocks of one width (``vit_problem``, the
    checker of every ViT format). ``allow_eva01_blocks``: also E's fused-qkv GELU blocks."""
    if 'text.token_embedding.weight' not in sd:
        return 'no text.token_embedding.weight (not a CLIP file)'
    if 'logit_scale' not in sd and 'text.logit_scale' not in sd:
        return 'no logit_scale'
    missing = [f'visual.{k}' for k in VISUAL_TOP if f'visual.{k}' not in sd]
    if missing:
        return f'lacks {missing}'
    visual = {k: v for k, v in sd.items() if k.startswith('visual.') and not ROPE_KEY.match(k)}
    for k in visual:
        if not k.startswith('visual.blocks.') and k[len('visual.'):] not in VISUAL_TOP:
            return f'{k} is not part of an EVA-02-CLIP vision tower'
    layouts = (CLIP_BLOCK, EVA01_BLOCK) if allow_eva01_blocks else (CLIP_BLOCK, )
    return vit_problem(visual, 'visual.', layouts)


@register_format(FORMAT, lambda sd: eva02_clip_problem(sd) is None,
                 'EVA02_CLIP_{B_psz16_s8B,L_psz14_s4B,L_336_psz14_s6B}.pt (vision + text); '
                 'E/14 files are detected as eva-clip',
                 lambda sd: eva02_clip_problem(sd) if 'text.token_embedding.weight' in sd
                 and 'visual.blocks.0.attn.qkv.weight' not in sd else None)
def convert_eva02_clip(sd, patch_size=None, dropped: Optional[Dict[str, str]] = None, **_):
    problem = eva02_clip_problem(sd, allow_eva01_blocks=True)
    if problem:
        raise KeyError(f'{FORMAT}: {problem}')
    dropped = {} if dropped is None else dropped
    out, left, rope = {}, [], []
    for key, value in sd.items():
        if ROPE_KEY.match(key):
            rope.append(key)
        elif key == 'text.attn_mask':
            dropped[key] = MASK_REASON
        elif key in ('logit_scale', 'text.logit_scale'):
            if 'logit_scale' in out:
                raise KeyError(f'{FORMAT}: both text.logit_scale and logit_scale are present')
            out['logit_scale'] = value.reshape(())
        elif key.startswith('visual.blocks.'):
            out['backbone.' + key[len('visual.'):]] = value
        elif key.startswith('visual.') and key[len('visual.'):] in VISUAL_TOP:
            out[VISUAL_TOP[key[len('visual.'):]]] = value
        elif key.startswith('text.') and TEXT_KEY.match(key[len('text.'):]):
            out[key] = value
        else:
            left.append(key)
    if left:
        raise KeyError(f'{FORMAT}: {len(left)} tensors have no mapping: {left[:10]}')
    if rope:
        dropped[f'visual.[blocks.N.attn.]rope.freqs_{{cos,sin}} ({len(rope)} tensors)'] = \
            ROPE_REASON
    return change_patch_size(out, patch_size)
