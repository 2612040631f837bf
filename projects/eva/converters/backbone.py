"""Image-backbone checkpoints: EVA-01 MIM / classification / EVA-CLIP vision encoder, timm
``Eva`` and mmpretrain ``BEiTViT`` (eva-g) -> ``EVAViT`` (+ MIM or classification head).

Every source tensor is either mapped or dropped for a stated reason; a key no rule covers is
an error, so nothing is lost silently.
"""
import re
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import torch

from ..models.vit_adapt import change_patch_size, drop_rope_tables
from . import drop_rope, register_format, rename_keys, require_mapped

EVA_EMBED_KEYS = ('cls_token', 'pos_embed', 'patch_embed.proj.weight', 'patch_embed.proj.bias')
BLOCK_KEY = re.compile(r'^blocks\.(\d+)\.(.+)$')


class BlockLayout(NamedTuple):
    """One family's transformer block (the official names, which ``EVAViT`` keeps): its name
    in messages, the block-0 tensor that identifies it, its MLP width and the shape of every
    tensor of a block of width ``dim`` and MLP width ``hidden``."""
    name: str
    marker: str
    hidden: Callable[[Dict[str, torch.Tensor]], int]
    shapes: Callable[[int, int], Dict[str, tuple]]
    hint: Optional[Tuple['re.Pattern', str]] = None  # (an item of another family, why)

    @property
    def items(self) -> Tuple[str, ...]:
        return tuple(self.shapes(1, 1))


def _attn_norms(d):
    return {'norm1.weight': (d, ), 'norm1.bias': (d, ), 'norm2.weight': (d, ),
            'norm2.bias': (d, ), 'attn.q_bias': (d, ), 'attn.v_bias': (d, ),
            'attn.proj.weight': (d, d), 'attn.proj.bias': (d, )}


# EVA-01: pre-LN, fused qkv with separate q/v biases, GELU MLP whose fc2 takes fc1's width
EVA01_BLOCK = BlockLayout(
    'EVA-01', 'attn.qkv.weight', lambda b: b['mlp.fc1.weight'].shape[0],
    lambda d, h: {**_attn_norms(d), 'attn.qkv.weight': (3 * d, d), 'mlp.fc1.weight': (h, d),
                  'mlp.fc1.bias': (h, ), 'mlp.fc2.weight': (d, h), 'mlp.fc2.bias': (d, )},
    (re.compile(r'fc1_[gx]|mlp\.norm|w12|w3|ffn_ln|rope|q_proj|k_proj|v_proj'),
     'SwiGLU / sub-LN / RoPE: an EVA-02 layout'))
# EVA-02 Ti/S (asuka): fused qkv, fused SwiGLU w12 (2H x D, gate rows first) + w3
EVA02_FUSED_BLOCK = BlockLayout(
    'EVA-02 Ti/S', 'mlp.w12.weight', lambda b: b['mlp.w12.weight'].shape[0] // 2,
    lambda d, h: {**_attn_norms(d), 'attn.qkv.weight': (3 * d, d), 'mlp.w12.weight': (2 * h, d),
                  'mlp.w12.bias': (2 * h, ), 'mlp.w3.weight': (d, h), 'mlp.w3.bias': (d, )})
# EVA-02 B/L (asuka / det / seg): separate q/k/v, naive SwiGLU w1/w2 + sub-LN ffn_ln + w3
EVA02_SPLIT_BLOCK = BlockLayout(
    'EVA-02 B/L', 'attn.q_proj.weight', lambda b: b['mlp.w1.weight'].shape[0],
    lambda d, h: {**_attn_norms(d), 'attn.q_proj.weight': (d, d), 'attn.k_proj.weight': (d, d),
                  'attn.v_proj.weight': (d, d), 'mlp.w1.weight': (h, d), 'mlp.w1.bias': (h, ),
                  'mlp.w2.weight': (h, d), 'mlp.w2.bias': (h, ), 'mlp.ffn_ln.weight': (h, ),
                  'mlp.ffn_ln.bias': (h, ), 'mlp.w3.weight': (d, h), 'mlp.w3.bias': (d, )},
    (re.compile(r'inner_attn_ln'), 'an EVA-02-CLIP tower: converters/eva02_clip.py'))
EVA02_BLOCKS = (EVA02_SPLIT_BLOCK, EVA02_FUSED_BLOCK)
BLOCK_ITEMS = EVA01_BLOCK.items


def vit_problem(sd: Dict[str, torch.Tensor], prefix: str = '',
                layouts: Sequence[BlockLayout] = (EVA01_BLOCK, ), kernel_ndim: int = 4,
                extra_block_items: Sequence[str] = ()) -> Optional[str]:
    """Why the tensors under ``prefix`` are not a ViT with blocks of one of ``layouts`` (None
    when they are): the layout's tensors and nothing else in every block, every block
    complete, shapes of one width. ``extra_block_items`` admits the per-block tensors a
    release adds on purpose (ViTDet's ``attn.rel_pos_h``, BEiT rel-pos tables)."""
    kernel = sd.get(prefix + 'patch_embed.proj.weight')
    if kernel is None:
        return f'no {prefix}patch_embed.proj.weight'
    layout = next((lay for lay in layouts if prefix + 'blocks.0.' + lay.marker in sd), None)
    if layout is None:
        return f'no {prefix}blocks.0.{layouts[0].marker}'
    if kernel.ndim != kernel_ndim:
        return (f'{prefix}patch_embed.proj.weight is {kernel.ndim}-D, expected '
                f'{kernel_ndim}-D')
    dim, allowed = kernel.shape[0], set(layout.items) | set(extra_block_items)
    blocks: Dict[int, Dict[str, torch.Tensor]] = {}
    for k, v in sd.items():
        if k.startswith(prefix + 'blocks.'):
            idx, _, item = k[len(prefix) + len('blocks.'):].partition('.')
            if not idx.isdigit() or item not in allowed:
                hint = f' ({layout.hint[1]})' if layout.hint and layout.hint[0].search(item) \
                    else ''
                return f'{k} is not part of an {layout.name} block{hint}'
            blocks.setdefault(int(idx), {})[item] = v
    if sorted(blocks) != list(range(len(blocks))):
        return f'block indices {sorted(blocks)} are not 0..{len(blocks) - 1}'
    for i, items in blocks.items():
        missing = [n for n in layout.items if n not in items]
        if missing:
            return f'{prefix}blocks.{i} lacks {missing}'
        hidden = layout.hidden(items)
        for n, shape in layout.shapes(dim, hidden).items():
            if tuple(items[n].shape) != shape:
                extra = (' (fc1 twice fc2\'s width: a fused SwiGLU, i.e. EVA-02)'
                         if n == 'mlp.fc2.weight' and items[n].shape[1] * 2 == hidden else '')
                return (f'{prefix}blocks.{i}.{n} has shape {tuple(items[n].shape)}, an '
                        f'{layout.name} block of width {dim} has {shape}{extra}')
    pos = sd.get(prefix + 'pos_embed')
    if pos is None or pos.ndim != 3 or pos.shape[-1] != dim:
        return f'{prefix}pos_embed is missing or not (1, N, {dim})'
    return None


def eva01_vit_problem(sd: Dict[str, torch.Tensor], prefix: str = '', kernel_ndim: int = 4,
                      extra_block_items: Sequence[str] = ()) -> Optional[str]:
    """:func:`vit_problem` for EVA-01 blocks (EVA-02 and BEiT variants differ in their keys
    or shapes: a fused SwiGLU ``fc1`` has twice ``fc2``'s width)."""
    return vit_problem(sd, prefix, (EVA01_BLOCK, ), kernel_ndim, extra_block_items)


def eva02_vit_problem(sd: Dict[str, torch.Tensor], prefix: str = '') -> Optional[str]:
    """:func:`vit_problem` for the official EVA-02 blocks (B/L or Ti/S), its stored RoPE
    tables aside (they are dropped: EVAViT computes them)."""
    return vit_problem(drop_rope_tables(sd), prefix, EVA02_BLOCKS)


def is_vit_key(name: str, block_items: Sequence[str] = BLOCK_ITEMS) -> bool:
    """An embedding key or a ``blocks.N.<item>`` key of a ViT with these block items."""
    m = BLOCK_KEY.match(name)
    return name in EVA_EMBED_KEYS or bool(m and m[2] in block_items)


class Family(NamedTuple):
    """EVA-01 or EVA-02: how its ViT is recognised and which block tensors it has."""
    name: str
    problem: Callable[[Dict[str, torch.Tensor]], Optional[str]]
    block_items: Tuple[str, ...]
    stored_rope: bool = False  # EVA-02's files hold RoPE tables (dropped)

    def tensors(self, sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """What detection looks at: the checkpoint without its stored RoPE tables."""
        return drop_rope_tables(sd) if self.stored_rope else sd


EVA01 = Family('EVA-01', eva01_vit_problem, BLOCK_ITEMS)
EVA02 = Family('EVA-02', eva02_vit_problem,
               tuple(dict.fromkeys(EVA02_SPLIT_BLOCK.items + EVA02_FUSED_BLOCK.items)), True)


def _top_level(sd: Dict[str, torch.Tensor]) -> set:
    """The keys outside the patch embedding, position table, cls token and blocks."""
    return {k for k in sd if k not in EVA_EMBED_KEYS and not k.startswith('blocks.')}


def _linear(sd, name, rows=None, cols=None) -> bool:
    w, b = sd.get(name + '.weight'), sd.get(name + '.bias')
    return (w is not None and b is not None and w.ndim == 2 and b.shape == w.shape[:1]
            and (rows is None or w.shape[0] == rows) and (cols is None or w.shape[1] == cols))


def _norm(sd, name, dim) -> bool:
    return all(tuple(sd.get(f'{name}.{p}', torch.empty(0)).shape) == (dim, )
               for p in ('weight', 'bias'))


def _width(sd, prefix='') -> int:
    return sd[prefix + 'patch_embed.proj.weight'].shape[0]


def _is_image_vit(sd, family: Family = EVA01) -> bool:
    """An *image* ViT of ``family`` (EVA-01 video checkpoints have a 5-D kernel: video.py)."""
    return 'patch_embed.proj.weight' in sd and family.problem(sd) is None


def _only(sd, allowed: set) -> bool:
    return _top_level(sd) <= allowed


def convert_vit(sd: Dict[str, torch.Tensor], fmt: str, extra: Dict[str, str],
                patch_size: Optional[int] = None, family: Family = EVA01,
                dropped: Optional[Dict[str, str]] = None) -> Dict[str, torch.Tensor]:
    """The ViT keys (named like ``EVAViT`` already) -> ``backbone.*``, the keys of ``extra``
    (source -> target: norms, heads, mask token) renamed, stored RoPE tables dropped (said in
    ``dropped``), anything else an error; then ``--patch-size``."""
    out, left = {}, []
    for k, v in (drop_rope(sd, dropped) if family.stored_rope else sd).items():
        if is_vit_key(k, family.block_items):
            out['backbone.' + k] = v
        elif k in extra:
            out[extra[k]] = v
        else:
            left.append(k)
    missing = [k for k in EVA_EMBED_KEYS[1:] if k not in sd]
    if missing:
        raise KeyError(f'{fmt}: {family.name} ViT checkpoint lacks {missing}')
    require_mapped(fmt, left)
    return change_patch_size(out, patch_size)


def _vit_explain(sd, prefix='', family: Family = EVA01):
    """For near-miss reports: an EVA-like ViT that is not this family's."""
    if any(prefix + f'blocks.0.attn.{n}' in sd for n in ('qkv.weight', 'q_bias', 'q_proj.weight')):
        return family.problem(sd, prefix)
    return None


def _rename(src: str, dst: str) -> Dict[str, str]:
    return {f'{src}.{p}': f'{dst}.{p}' for p in ('weight', 'bias')}


NORM = {'norm.weight', 'norm.bias'}
FC_NORM = {'fc_norm.weight', 'fc_norm.bias'}
HEAD = {'head.weight', 'head.bias'}
LM_HEAD = {'lm_head.weight', 'lm_head.bias'}
LINPROBE_HEAD = {'head.0.running_mean', 'head.0.running_var', 'head.0.num_batches_tracked',
                 'head.1.weight', 'head.1.bias'}
# -> EVAMIM: backbone with mask token and final norm, head.lm_head
MIM_KEYS = {'mask_token': 'backbone.mask_token', **_rename('norm', 'backbone.norm'),
            **_rename('lm_head', 'head.lm_head')}
# -> ImageClassifier: backbone (+ fc_norm or final norm), head.fc
CLS_KEYS = {**_rename('fc_norm', 'backbone.fc_norm'), **_rename('norm', 'backbone.norm'),
            **_rename('head', 'head.fc')}


# ------------------------------------------------------------------ MIM
def _is_mim(sd, family: Family = EVA01):
    sd = family.tensors(sd)
    if not _is_image_vit(sd, family) or not _only(sd, {'mask_token'} | NORM | LM_HEAD):
        return False
    dim = _width(sd)
    return (_linear(sd, 'lm_head', cols=dim)
            and ('mask_token' not in sd or tuple(sd['mask_token'].shape) == (1, 1, dim))
            and (not NORM & set(sd) or _norm(sd, 'norm', dim)))


@register_format('eva01-mim', _is_mim, 'eva_psz14.pt, eva_psz14to16.pt', _vit_explain)
def convert_eva01_mim(sd, patch_size=None, dropped=None, **_):
    """-> ``EVAMIM``: backbone (with mask token and final norm) + ``head.lm_head``."""
    return convert_vit(sd, 'eva01-mim', MIM_KEYS, patch_size, EVA01, dropped)


@register_format('eva02-mim', lambda sd: _is_mim(sd, EVA02),
                 'eva02_{Ti,S,B,L}_pt_{in21k,m38m}_p14.pt, eva02_*_pt_*_p14to16.pt '
                 '(DeepSpeed module, fp16)', lambda sd: _vit_explain(sd, family=EVA02))
def convert_eva02_mim(sd, patch_size=None, dropped=None, **_):
    """-> ``EVAMIM`` with an ``eva02-*`` backbone, as EVA-01's: mask token and final norm in
    the backbone, the 1024-d ``lm_head`` (the EVA-CLIP target width) as ``head.lm_head``; the
    stored RoPE tables are dropped."""
    return convert_vit(sd, 'eva02-mim', MIM_KEYS, patch_size, EVA02, dropped)


# ------------------------------------------------------------------ classification / timm
def _is_cls(sd, family: Family = EVA01):
    """A classifier: ``head`` (K x C) after ``fc_norm`` (mean pooling: EVA-01's fine-tunes,
    timm ``global_pool='avg'``) or after the final ``norm`` (cls token, timm 'token').
    The cls-token layout is also EVA-CLIP's vision tower with its projection: such a
    checkpoint is ambiguous and needs ``--format``."""
    sd = family.tensors(sd)
    if not _is_image_vit(sd, family) or not _only(sd, NORM | FC_NORM | HEAD):
        return False
    dim = _width(sd)
    pooled = _norm(sd, 'fc_norm', dim) or (not FC_NORM & set(sd) and _norm(sd, 'norm', dim))
    return _linear(sd, 'head', cols=dim) and pooled \
        and (not NORM & set(sd) or _norm(sd, 'norm', dim))


@register_format('eva01-cls', _is_cls,
                 'eva_21k_224px_psz14.pt, eva_21k_1k_*_ema_*.pt, timm Eva (EVA-01) '
                 'classifiers', _vit_explain)
def convert_eva01_cls(sd, patch_size=None, dropped=None, **_):
    """-> ``ImageClassifier``: backbone (+ ``fc_norm`` or final ``norm``) + ``head.fc``.

    timm's ``Eva`` uses the same names (its ``k_bias`` is a non-persistent buffer).
    """
    return convert_vit(sd, 'eva01-cls', CLS_KEYS, patch_size, EVA01, dropped)


@register_format('eva02-cls', lambda sd: _is_cls(sd, EVA02),
                 'eva02_{Ti,S,B,L}_*_{in1k,in21k,in21k_to_in1k}*.pt (model / module / '
                 'model_ema: EMA preferred)', lambda sd: _vit_explain(sd, family=EVA02))
def convert_eva02_cls(sd, patch_size=None, dropped=None, **_):
    """-> ``ImageClassifier`` with an ``eva02-*`` backbone: ``fc_norm`` (mean pooling) and
    ``head.fc``; the stored RoPE tables are dropped."""
    return convert_vit(sd, 'eva02-cls', CLS_KEYS, patch_size, EVA02, dropped)


# ------------------------------------------------------------------ EVA-CLIP linear probe
def _is_eva_clip_linprobe(sd):
    """EVA-01's linear probe of the EVA-CLIP vision encoder: cls token after the final
    ``norm`` -> ``head = Sequential(BatchNorm1d(affine=False), Linear)`` (MAE's
    ``main_linprobe``), i.e. ``head.0`` holds only running statistics."""
    if not _is_image_vit(sd) or _top_level(sd) != NORM | LINPROBE_HEAD:
        return False
    dim = _width(sd)
    return (_norm(sd, 'norm', dim) and _linear(sd, 'head.1', cols=dim)
            and tuple(sd['head.0.running_mean'].shape) == (dim, )
            and tuple(sd['head.0.running_var'].shape) == (dim, )
            and sd['head.0.num_batches_tracked'].numel() == 1)


@register_format('eva-clip-linprobe', _is_eva_clip_linprobe,
                 'eva_clip_vis_enc_sz{224,336}_lincls_86p5.pth', _vit_explain)
def convert_eva_clip_linprobe(sd, patch_size=None, **_):
    """-> ``ImageClassifier`` with ``EVALinearProbeHead``: backbone with its final ``norm``,
    ``head.0`` (running mean / var / count) -> ``head.bn``, ``head.1`` -> ``head.fc``."""
    keys = {**_rename('norm', 'backbone.norm'), **_rename('head.1', 'head.fc'),
            **{f'head.0.{n}': f'head.bn.{n}'
               for n in ('running_mean', 'running_var', 'num_batches_tracked')}}
    return convert_vit(sd, 'eva-clip-linprobe', keys, patch_size)


# ------------------------------------------------------------------ EVA-CLIP vision tower
def _strip_visual(sd):
    if sd and all(k.startswith('visual.') for k in sd):
        return {k[len('visual.'):]: v for k, v in sd.items()}
    return sd


def _is_clip_vision(sd):
    """EVA-CLIP's vision tower: final ``norm``, then optionally its projection ``head``
    (P x C), no ``fc_norm``; the ``visual.`` prefix of the full CLIP model may remain."""
    if any(k.startswith('text.') for k in sd):
        return False  # the full EVA-CLIP model: see converters/clip.py
    sd = _strip_visual(sd)
    if not _is_image_vit(sd) or not _only(sd, NORM | HEAD):
        return False
    dim = _width(sd)
    return _norm(sd, 'norm', dim) and (not HEAD & set(sd) or _linear(sd, 'head', cols=dim))


@register_format('eva-clip-vision', _is_clip_vision,
                 'eva_clip_psz14_vision_enc.pt, a visual.*-only dict',
                 lambda sd: _vit_explain(_strip_visual(sd)))
def convert_eva_clip_vision(sd, patch_size=None, **_):
    """-> backbone with its final ``norm`` (the CLIP tower pools the normed cls token); the
    1408 -> 1024 CLIP projection ``head`` is kept as ``clip_projection`` (unused by
    classifiers, which train a new head)."""
    sd = _strip_visual(sd)
    if not NORM <= set(sd):
        raise KeyError('eva-clip vision: the tower lacks its final norm')
    keys = {**_rename('norm', 'backbone.norm'), **_rename('head', 'clip_projection')}
    return convert_vit(sd, 'eva-clip vision', keys, patch_size)


# ------------------------------------------------------------------ mmpretrain BEiTViT
MMPRETRAIN_RULES = [
    (r'^backbone\.patch_embed\.projection\.', 'backbone.patch_embed.proj.'),
    (r'^backbone\.layers\.(\d+)\.ln1\.', r'backbone.blocks.\1.norm1.'),
    (r'^backbone\.layers\.(\d+)\.ln2\.', r'backbone.blocks.\1.norm2.'),
    (r'^backbone\.layers\.(\d+)\.attn\.', r'backbone.blocks.\1.attn.'),
    (r'^backbone\.layers\.(\d+)\.ffn\.layers\.0\.0\.', r'backbone.blocks.\1.mlp.fc1.'),
    (r'^backbone\.layers\.(\d+)\.ffn\.layers\.1\.', r'backbone.blocks.\1.mlp.fc2.'),
    (r'^backbone\.(cls_token|pos_embed|mask_token)$', r'backbone.\1'),
    (r'^backbone\.ln1\.', 'backbone.norm.'),
    (r'^head\.fc\.', 'head.fc.'),
]


def _rename_mmpretrain(sd):
    """mmpretrain names -> ours; returns (renamed, unmapped keys, layer-scale / rel-pos keys)."""
    ln2_target = 'backbone.fc_norm.' if 'head.fc.weight' in sd else 'backbone.norm.'
    beit_only = [k for k in sd if re.search(r'layers\.\d+\.gamma_[12]$', k)
                 or 'relative_position' in k]
    rules = MMPRETRAIN_RULES + [(r'^backbone\.ln2\.', ln2_target),
                                # eva_to_mmpretrain keeps MIM's lm_head
                                (r'^lm_head\.(weight|bias)$', r'head.lm_head.\1')]
    out, left = rename_keys({k: v for k, v in sd.items() if k not in beit_only}, rules)
    return out, left, beit_only


def _is_mmpretrain_beit(sd):
    """mmpretrain ``BEiTViT`` whose every layer renames onto an EVA-01 block (mmpretrain's
    EVA-02 ``ViTEVA02`` has other layer names and a SwiGLU FFN: it does not match)."""
    if 'backbone.patch_embed.projection.weight' not in sd:
        return False
    out, left, _ = _rename_mmpretrain(sd)
    return not left and eva01_vit_problem(out, 'backbone.') is None


@register_format('mmpretrain-beit-eva', _is_mmpretrain_beit,
                 'mmpretrain BEiTViT eva-g: beit-g-p14_*eva*, beit-g-p16_*eva*',
                 lambda sd: eva01_vit_problem(_rename_mmpretrain(sd)[0], 'backbone.')
                 if 'backbone.patch_embed.projection.weight' in sd else None)
def convert_mmpretrain_beit(sd, patch_size=None, **_):
    """mmpretrain's ``eva_to_mmpretrain.py`` put both EVA-01's final ``norm`` and ``fc_norm``
    into ``ln2``: it is ``fc_norm`` when the checkpoint has a classifier head, else ``norm``."""
    out, left, beit_only = _rename_mmpretrain(sd)
    if beit_only:
        raise KeyError(f'{beit_only[0]}: layer scale / relative position bias are not part of '
                       'EVA-01 (was the BEiTViT built with layer_scale_init_value=0, '
                       'use_rel_pos_bias=False?)')
    require_mapped('mmpretrain BEiTViT', left)
    return change_patch_size(out, patch_size)


# ------------------------------------------------------------------ this project's own runs
OWN_RUN_PREFIXES = ('backbone.', 'head.', 'data_preprocessor.')


def _is_own_image_run(sd):
    """Only backbone + head tensors, named like ``EVAViT``: released checkpoints that also
    carry ``backbone.blocks`` (the segmentation release has ``decode_head``) do not match.
    EVA-01 and EVA-02 Ti/S blocks have a fused ``qkv``, EVA-02 B/L ``q_proj``."""
    kernel = sd.get('backbone.patch_embed.proj.weight')
    return (any(f'backbone.blocks.0.attn.{n}.weight' in sd for n in ('qkv', 'q_proj'))
            and kernel is not None and kernel.ndim == 4
            and all(k.startswith(OWN_RUN_PREFIXES) for k in sd))


@register_format('own-run', _is_own_image_run,
                 'this project: EVAMIM / ImageClassifier run with an EVAViT backbone '
                 '(work_dirs/*/epoch_*.pth)',
                 aliases=('own-run-eva02',))
def convert_own_run(sd, patch_size=None, **_):
    """A checkpoint of our own MIM pretraining or classification fine-tune -> its backbone,
    for transfer (e.g. ``--patch-size 16`` for detection / segmentation, as EVA-01 did with
    ``eva_psz14.pt``). Task heads (``head.*``, the MIM ``lm_head`` or a classifier) are
    dropped: the target task builds its own. The names are already ``EVAViT``'s."""
    out = {k: v for k, v in sd.items() if k.startswith('backbone.')}
    return change_patch_size(out, patch_size)
