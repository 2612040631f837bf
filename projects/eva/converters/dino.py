"""detrex ``dino_eva`` checkpoints (DINO on EVA-02, projects/dino_eva) -> mmdet's ``DINO``.

The released ``dino_eva_02_*.pth`` hold ``{'model': state_dict, ...}`` of detrex's ``DINO``:

* ``backbone.net.*``: detectron2's EVA-02 ViT (the EVA-02 det ViT: ``q_proj``/``k_proj``/
  ``v_proj`` + ``q_bias``/``v_bias``, SwiGLU ``w1``/``w2``/``w3`` with ``ffn_ln``, RoPE tables
  ``rope_win``/``rope_glb`` and per block) -> ``backbone.*`` (named like ``EVAViT``; the RoPE
  tables are dropped: ``EVAViT`` computes them);
* ``backbone.simfp_{3,4,5}.*``: detectron2's SimpleFeaturePyramid with scale factors (2, 1, 0.5)
  (``LastLevelMaxPool`` on top has no weights) -> ``neck.0`` (our ``SimpleFeaturePyramid``);
* ``neck.convs.{i}.{conv,norm}.*``: detrex's ChannelMapper (1x1 conv with bias + GroupNorm)
  -> ``neck.1`` (mmdet ``ChannelMapper``: ``conv`` / ``gn``);
* ``transformer.*``: detrex's ``DINOTransformer`` -> mmdet ``DINO``'s ``encoder``,
  ``decoder``, ``level_embed``, ``query_embedding``, ``memory_trans_fc``/``_norm``;
* ``class_embed.{k}`` / ``bbox_embed.{k}.layers.{j}`` (one per decoder layer + the encoder's
  proposal head) -> ``bbox_head.cls_branches.{k}`` / ``bbox_head.reg_branches.{k}.{2j}``;
  the decoder holds the same modules again (``transformer.decoder.class_embed`` /
  ``bbox_embed``): those copies are checked equal and dropped;
* ``label_enc.weight`` (denoising label embedding) -> ``dn_query_generator.label_embedding``.

Every tensor is mapped or dropped by a named rule; anything else is an error.
"""
import re
from typing import Dict, List, Optional, Tuple

import torch

from . import drop_rope, register_format, require_mapped
from .backbone import eva02_vit_problem
from .detection import check_pixel_stats

FORMAT = 'detrex-dino-eva02'

# detectron2 SimpleFeaturePyramid(scale_factors=(2, 1, 0.5)): simfp_<log2 stride>.<index> ->
# our pyramid level (0: stride 8, 1: 16, 2: 32) and module
_PYRAMID = {
    3: {0: 'resamplers.0.0', 1: 'lateral_convs.0', 2: 'fpn_convs.0'},
    4: {0: 'lateral_convs.1', 1: 'fpn_convs.1'},
    5: {1: 'lateral_convs.2', 2: 'fpn_convs.2'},  # .0 is the 2x2 max-pool
}
# detrex BaseTransformerLayer attention slots -> mmdet layer attributes
_ENC_ATTN = {'0': 'self_attn'}
_DEC_ATTN = {'0': 'self_attn', '1': 'cross_attn'}
# (pattern, replacement) for the transformer and heads; the first match wins
RULES: List[Tuple[str, str]] = [
    (r'^transformer\.level_embeds$', 'level_embed'),
    (r'^transformer\.tgt_embed\.', 'query_embedding.'),
    (r'^transformer\.enc_output\.', 'memory_trans_fc.'),
    (r'^transformer\.enc_output_norm\.', 'memory_trans_norm.'),
    (r'^transformer\.(encoder|decoder)\.layers\.(\d+)\.ffns\.0\.', r'\1.layers.\2.ffn.'),
    (r'^transformer\.(encoder|decoder)\.layers\.(\d+)\.norms\.', r'\1.layers.\2.norms.'),
    (r'^transformer\.decoder\.ref_point_head\.', 'decoder.ref_point_head.'),
    (r'^transformer\.decoder\.norm\.', 'decoder.norm.'),
    (r'^class_embed\.(\d+)\.', r'bbox_head.cls_branches.\1.'),
    (r'^label_enc\.weight$', 'dn_query_generator.label_embedding.weight'),
]
_COMPILED = [(re.compile(p), r) for p, r in RULES]
_ATTN = re.compile(r'^transformer\.(encoder|decoder)\.layers\.(\d+)\.attentions\.(\d)\.(.+)$')
_REG = re.compile(r'^bbox_embed\.(\d+)\.layers\.(\d)\.(.+)$')
_SIMFP = re.compile(r'^backbone\.simfp_(\d)\.(\d)\.(.+)$')
_MAPPER = re.compile(r'^neck\.convs\.(\d+)\.(conv|norm)\.(.+)$')
# the decoder's references to the model's prediction heads (the same modules, saved twice)
_SHARED = re.compile(r'^transformer\.decoder\.(class_embed|bbox_embed)\.(.+)$')


def _is_detrex_dino(sd: Dict[str, torch.Tensor]) -> bool:
    return 'label_enc.weight' in sd and \
        'transformer.decoder.layers.0.attentions.0.attn.in_proj_weight' in sd and \
        eva02_vit_problem(sd, 'backbone.net.') is None


def _explain(sd: Dict[str, torch.Tensor]) -> Optional[str]:
    if 'label_enc.weight' not in sd or not any(k.startswith('transformer.') for k in sd):
        return None
    if 'transformer.decoder.layers.0.attentions.0.attn.in_proj_weight' not in sd:
        return 'a detrex DETR without DINO\'s decoder self-attention ' \
            '(transformer.decoder.layers.0.attentions.0.attn.in_proj_weight)'
    return eva02_vit_problem(sd, 'backbone.net.')


def _map_key(k: str) -> Optional[str]:
    """The mmdet key of one detrex key, or None when no rule applies."""
    if k.startswith('backbone.net.'):
        return 'backbone.' + k[len('backbone.net.'):]
    m = _SIMFP.match(k)
    if m:
        dst = _PYRAMID.get(int(m[1]), {}).get(int(m[2]))
        if dst is None:
            return None
        if dst.startswith('resamplers'):
            return f'neck.0.{dst}.{m[3]}'
        # detectron2 Conv2d(norm=LN): weight (no bias) + norm.* -> ConvModule conv / ln
        rest = m[3]
        return f'neck.0.{dst}.ln.{rest[5:]}' if rest.startswith('norm.') \
            else f'neck.0.{dst}.conv.{rest}'
    m = _MAPPER.match(k)
    if m:
        return f'neck.1.convs.{m[1]}.{"conv" if m[2] == "conv" else "gn"}.{m[3]}'
    m = _ATTN.match(k)
    if m:
        slot = (_ENC_ATTN if m[1] == 'encoder' else _DEC_ATTN).get(m[3])
        return None if slot is None else f'{m[1]}.layers.{m[2]}.{slot}.{m[4]}'
    m = _REG.match(k)
    if m:  # detrex MLP layers.{0,1,2} -> Sequential(Linear, ReLU, Linear, ReLU, Linear)
        return f'bbox_head.reg_branches.{m[1]}.{2 * int(m[2])}.{m[3]}'
    for pattern, repl in _COMPILED:
        if pattern.match(k):
            return pattern.sub(repl, k, count=1)
    return None


@register_format(FORMAT, _is_detrex_dino,
                 'detrex dino_eva: dino_eva_02_*_4scale_12ep.pth (DINO on EVA-02-B/L)',
                 _explain)
def convert_detrex_dino(sd: Dict[str, torch.Tensor], patch_size=None,
                        dropped: Optional[Dict[str, str]] = None, **_) -> dict:
    """-> mmdet ``DINO`` with ``EVAViT`` and ``[SimpleFeaturePyramid, ChannelMapper]`` necks
    (configs/detection/dino-4scale_eva02-*)."""
    if patch_size not in (None, 16):
        raise ValueError('dino_eva checkpoints are patch 16; do not pass another patch size')
    dropped = {} if dropped is None else dropped
    sd = drop_rope(sd, dropped)
    out, left = {}, []
    for k, v in sd.items():
        if check_pixel_stats(k, v):
            continue
        m = _SHARED.match(k)
        if m:
            head = f'{m[1]}.{m[2]}'
            if head not in sd:
                raise KeyError(f'{FORMAT}: {k} has no counterpart {head} (the decoder shares '
                               'the model\'s prediction heads)')
            if not torch.equal(v, sd[head]):
                raise ValueError(f'{FORMAT}: {k} differs from {head}; detrex shares these '
                                 'modules, so the file is not a detrex DINO state dict')
            dropped.setdefault(f'transformer.decoder.{m[1]}.*',
                               f'the decoder\'s reference to the model\'s {m[1]} (same tensors)')
            continue
        target = _map_key(k)
        if target is None:
            left.append(k)
            continue
        out[target] = v
    require_mapped(FORMAT, left)
    return out
