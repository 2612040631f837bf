"""Image-backbone checkpoints: EVA-01 MIM / classification / EVA-CLIP vision encoder, timm
``Eva`` and mmpretrain ``BEiTViT`` (eva-g) -> ``EVAViT`` (+ MIM or classification head).

Every source tensor is either mapped or dropped for a stated reason; a key no rule covers is
an error, so nothing is lost silently.
"""
import re
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F

from . import register_format

EVA_BLOCK_KEY = re.compile(
    r'^blocks\.\d+\.(norm1|norm2)\.(weight|bias)$|'
    r'^blocks\.\d+\.attn\.(qkv\.weight|q_bias|v_bias|proj\.weight|proj\.bias)$|'
    r'^blocks\.\d+\.mlp\.(fc1|fc2)\.(weight|bias)$')
EVA_EMBED_KEYS = ('cls_token', 'pos_embed', 'patch_embed.proj.weight', 'patch_embed.proj.bias')
BLOCK_ITEMS = ('norm1.weight', 'norm1.bias', 'norm2.weight', 'norm2.bias', 'attn.qkv.weight',
               'attn.q_bias', 'attn.v_bias', 'attn.proj.weight', 'attn.proj.bias',
               'mlp.fc1.weight', 'mlp.fc1.bias', 'mlp.fc2.weight', 'mlp.fc2.bias')


EVA02_HINT = re.compile(r'fc1_[gx]|mlp\.norm|w12|w3|ffn_ln|rope|q_proj|k_proj|v_proj')


def eva01_vit_problem(sd: Dict[str, torch.Tensor], prefix: str = '', kernel_ndim: int = 4,
                      extra_block_items: Sequence[str] = ()) -> Optional[str]:
    """Why the tensors under ``prefix`` are not an EVA-01 ViT (None when they are).

    EVA-01's block, and nothing else: pre-LN, fused ``qkv`` (3C x C) with separate q/v
    biases, a plain GELU MLP whose ``fc2`` takes exactly ``fc1``'s width, every block
    complete. EVA-02 (RoPE, fused SwiGLU ``fc1`` of 2x the hidden width, sub-LN) and BEiT
    variants differ in these keys or shapes; ``extra_block_items`` admits the per-block
    tensors a release adds on purpose (ViTDet's ``attn.rel_pos_h``, BEiT rel-pos tables).
    """
    kernel = sd.get(prefix + 'patch_embed.proj.weight')
    for key in (prefix + 'patch_embed.proj.weight', prefix + 'blocks.0.attn.qkv.weight'):
        if key not in sd:
            return f'no {key}'
    if kernel.ndim != kernel_ndim:
        return (f'{prefix}patch_embed.proj.weight is {kernel.ndim}-D, expected '
                f'{kernel_ndim}-D')
    dim = kernel.shape[0]
    blocks: Dict[int, Dict[str, torch.Tensor]] = {}
    for k, v in sd.items():
        if k.startswith(prefix + 'blocks.'):
            idx, _, item = k[len(prefix) + len('blocks.'):].partition('.')
            if not idx.isdigit() or (item not in BLOCK_ITEMS and item not in extra_block_items):
                hint = ' (SwiGLU / sub-LN / RoPE: an EVA-02 layout)' if EVA02_HINT.search(item) \
                    else ''
                return f'{k} is not part of an EVA-01 block{hint}'
            blocks.setdefault(int(idx), {})[item] = v
    if sorted(blocks) != list(range(len(blocks))):
        return f'block indices {sorted(blocks)} are not 0..{len(blocks) - 1}'
    for i, items in blocks.items():
        missing = [n for n in BLOCK_ITEMS if n not in items]
        if missing:
            return f'{prefix}blocks.{i} lacks {missing}'
        hidden = items['mlp.fc1.weight'].shape[0]
        expected = {'norm1.weight': (dim, ), 'norm1.bias': (dim, ), 'norm2.weight': (dim, ),
                    'norm2.bias': (dim, ), 'attn.qkv.weight': (3 * dim, dim),
                    'attn.q_bias': (dim, ), 'attn.v_bias': (dim, ),
                    'attn.proj.weight': (dim, dim), 'attn.proj.bias': (dim, ),
                    'mlp.fc1.weight': (hidden, dim), 'mlp.fc1.bias': (hidden, ),
                    'mlp.fc2.weight': (dim, hidden), 'mlp.fc2.bias': (dim, )}
        for n, shape in expected.items():
            if tuple(items[n].shape) != shape:
                extra = (' (fc1 twice fc2\'s width: a fused SwiGLU, i.e. EVA-02)'
                         if n == 'mlp.fc2.weight' and items[n].shape[1] * 2 == hidden else '')
                return (f'{prefix}blocks.{i}.{n} has shape {tuple(items[n].shape)}, an EVA-01 '
                        f'block of width {dim} has {shape}{extra}')
    pos = sd.get(prefix + 'pos_embed')
    if pos is None or pos.ndim != 3 or pos.shape[-1] != dim:
        return f'{prefix}pos_embed is missing or not (1, N, {dim})'
    return None


def _is_eva01_layout(sd: Dict[str, torch.Tensor]) -> bool:
    """An EVA-01 *image* ViT (video checkpoints have a 5-D patch kernel: converters/video.py)."""
    return 'patch_embed.proj.weight' in sd and eva01_vit_problem(sd) is None


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


def resize_patch_embed(weight: torch.Tensor, patch_size: int) -> torch.Tensor:
    """EVA-01's 14 -> 16 conversion: plain bicubic resize of the kernel, no rescale."""
    if weight.shape[-1] == patch_size:
        return weight
    return F.interpolate(weight.float(), size=(patch_size, patch_size), mode='bicubic',
                         align_corners=False)


def resize_pos_embed_grid(pos: torch.Tensor, grid: int) -> torch.Tensor:
    """Bicubic resize of a (1, 1 + s*s, C) table to ``grid`` x ``grid`` (cls slot kept)."""
    from ..models.eva_vit import resize_pos_embed
    side = int(round((pos.shape[1] - 1) ** 0.5))
    if side * side != pos.shape[1] - 1:
        raise ValueError(f'pos_embed with {pos.shape[1]} tokens is not cls + square grid')
    return resize_pos_embed(pos.float(), (side, side), (grid, grid), num_extra_tokens=1)


def change_patch_size(sd: Dict[str, torch.Tensor], patch_size: Optional[int],
                      prefix: str = 'backbone.') -> Dict[str, torch.Tensor]:
    """Apply ``--patch-size``: kernel resized and the pos grid kept at the pretraining image
    size (224 px -> 14 x 14 at patch 16), exactly ``interpolate_patch_14to16.py``."""
    key = prefix + 'patch_embed.proj.weight'
    if not patch_size or key not in sd or sd[key].shape[-1] == patch_size:
        return sd
    src_patch = sd[key].shape[-1]
    sd[key] = resize_patch_embed(sd[key], patch_size)
    pos_key = prefix + 'pos_embed'
    if pos_key in sd:
        side = int(round((sd[pos_key].shape[1] - 1) ** 0.5))
        sd[pos_key] = resize_pos_embed_grid(sd[pos_key], side * src_patch // patch_size)
    return sd


def map_eva01_vit(sd: Dict[str, torch.Tensor], out: Dict[str, torch.Tensor],
                  prefix: str = 'backbone.') -> set:
    """Copy the transformer keys (already named like ``EVAViT``); returns the keys used."""
    used = set()
    for k, v in sd.items():
        if k in EVA_EMBED_KEYS or EVA_BLOCK_KEY.match(k):
            out[prefix + k] = v
            used.add(k)
    missing = [k for k in EVA_EMBED_KEYS[1:] if k not in sd]
    if missing:
        raise KeyError(f'EVA ViT checkpoint lacks {missing}')
    return used


def _check_all_used(sd, used, fmt):
    left = sorted(set(sd) - used)
    if left:
        raise KeyError(f'{fmt}: {len(left)} source tensors have no mapping: {left[:10]}')


def _vit_explain(sd, prefix=''):
    """For near-miss reports: an EVA-like ViT that is not EVA-01's (e.g. EVA-02)."""
    if prefix + 'blocks.0.attn.qkv.weight' in sd or prefix + 'blocks.0.attn.q_bias' in sd:
        return eva01_vit_problem(sd, prefix)
    return None


def _only(sd, allowed: set) -> bool:
    return _top_level(sd) <= allowed


NORM = {'norm.weight', 'norm.bias'}
FC_NORM = {'fc_norm.weight', 'fc_norm.bias'}
HEAD = {'head.weight', 'head.bias'}
LM_HEAD = {'lm_head.weight', 'lm_head.bias'}
LINPROBE_HEAD = {'head.0.running_mean', 'head.0.running_var', 'head.0.num_batches_tracked',
                 'head.1.weight', 'head.1.bias'}


# ------------------------------------------------------------------ EVA-01 MIM
def _is_eva01_mim(sd):
    if not _is_eva01_layout(sd) or not _only(sd, {'mask_token'} | NORM | LM_HEAD):
        return False
    dim = _width(sd)
    return (_linear(sd, 'lm_head', cols=dim)
            and ('mask_token' not in sd or tuple(sd['mask_token'].shape) == (1, 1, dim))
            and (not NORM & set(sd) or _norm(sd, 'norm', dim)))


@register_format('eva01-mim', _is_eva01_mim, 'eva_psz14.pt, eva_psz14to16.pt', _vit_explain)
def convert_eva01_mim(sd, patch_size=None, **_):
    """-> ``EVAMIM``: backbone (with mask token and final norm) + ``head.lm_head``."""
    out = {}
    used = map_eva01_vit(sd, out)
    for k in ('mask_token', 'norm.weight', 'norm.bias'):
        if k in sd:
            out['backbone.' + k] = sd[k]
            used.add(k)
    for k in ('lm_head.weight', 'lm_head.bias'):
        out['head.' + k] = sd[k]
        used.add(k)
    _check_all_used(sd, used, 'eva01-mim')
    return change_patch_size(out, patch_size)


# ------------------------------------------------------------------ classification / timm
def _is_eva01_cls(sd):
    """A classifier: ``head`` (K x C) after ``fc_norm`` (mean pooling: EVA-01's fine-tunes,
    timm ``global_pool='avg'``) or after the final ``norm`` (cls token, timm 'token').
    The cls-token layout is also EVA-CLIP's vision tower with its projection: such a
    checkpoint is ambiguous and needs ``--format``."""
    if not _is_eva01_layout(sd) or not _only(sd, NORM | FC_NORM | HEAD):
        return False
    dim = _width(sd)
    pooled = _norm(sd, 'fc_norm', dim) or (not FC_NORM & set(sd) and _norm(sd, 'norm', dim))
    return _linear(sd, 'head', cols=dim) and pooled \
        and (not NORM & set(sd) or _norm(sd, 'norm', dim))


@register_format('eva01-cls', _is_eva01_cls,
                 'eva_21k_224px_psz14.pt, eva_21k_1k_*_ema_*.pt, timm Eva (EVA-01) '
                 'classifiers', _vit_explain)
def convert_eva01_cls(sd, patch_size=None, **_):
    """-> ``ImageClassifier``: backbone (+ ``fc_norm`` or final ``norm``) + ``head.fc``.

    timm's ``Eva`` uses the same names (its ``k_bias`` is a non-persistent buffer).
    """
    out = {}
    used = map_eva01_vit(sd, out)
    for k in ('fc_norm.weight', 'fc_norm.bias', 'norm.weight', 'norm.bias'):
        if k in sd:
            out['backbone.' + k] = sd[k]
            used.add(k)
    for k in ('head.weight', 'head.bias'):
        if k in sd:
            out['head.fc.' + k.split('.')[1]] = sd[k]
            used.add(k)
    _check_all_used(sd, used, 'eva01-cls')
    return change_patch_size(out, patch_size)


# ------------------------------------------------------------------ EVA-CLIP linear probe
def _is_eva_clip_linprobe(sd):
    """EVA-01's linear probe of the EVA-CLIP vision encoder: cls token after the final
    ``norm`` -> ``head = Sequential(BatchNorm1d(affine=False), Linear)`` (MAE's
    ``main_linprobe``), i.e. ``head.0`` holds only running statistics."""
    if not _is_eva01_layout(sd) or _top_level(sd) != NORM | LINPROBE_HEAD:
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
    out = {}
    used = map_eva01_vit(sd, out)
    for k in sorted(NORM):
        out['backbone.' + k] = sd[k]
    for k in LINPROBE_HEAD:
        out[k.replace('head.0.', 'head.bn.').replace('head.1.', 'head.fc.')] = sd[k]
    _check_all_used(sd, used | NORM | LINPROBE_HEAD, 'eva-clip-linprobe')
    return change_patch_size(out, patch_size)


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
    if not _is_eva01_layout(sd) or not _only(sd, NORM | HEAD):
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
    out = {}
    used = map_eva01_vit(sd, out)
    for k in ('norm.weight', 'norm.bias'):
        out['backbone.' + k] = sd[k]
        used.add(k)
    for k in ('head.weight', 'head.bias'):
        if k in sd:
            out['clip_projection.' + k.split('.')[1]] = sd[k]
            used.add(k)
    _check_all_used(sd, used, 'eva-clip vision')
    return change_patch_size(out, patch_size)


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
    out, left, beit_only = {}, [], []
    for k, v in sd.items():
        if k.startswith('backbone.ln2.'):
            out[ln2_target + k.split('.')[-1]] = v
            continue
        if re.search(r'layers\.\d+\.gamma_[12]$', k) or 'relative_position' in k:
            beit_only.append(k)
            continue
        for pattern, repl in MMPRETRAIN_RULES:
            if re.match(pattern, k):
                out[re.sub(pattern, repl, k)] = v
                break
        else:
            if k in ('lm_head.weight', 'lm_head.bias'):  # eva_to_mmpretrain keeps MIM lm_head
                out['head.' + k] = v
            else:
                left.append(k)
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
    if left:
        raise KeyError(f'mmpretrain BEiTViT: {len(left)} tensors have no mapping: {left[:10]}')
    return change_patch_size(out, patch_size)


# ------------------------------------------------------------------ this project's own runs
OWN_RUN_PREFIXES = ('backbone.', 'head.', 'data_preprocessor.')


def _is_own_image_run(sd):
    """Only backbone + head tensors, named like ``EVAViT``: released checkpoints that also
    carry ``backbone.blocks`` (the segmentation release has ``decode_head``) do not match."""
    kernel = sd.get('backbone.patch_embed.proj.weight')
    return ('backbone.blocks.0.attn.qkv.weight' in sd and kernel is not None
            and kernel.ndim == 4 and all(k.startswith(OWN_RUN_PREFIXES) for k in sd))


@register_format('own-run', _is_own_image_run,
                 'this project: EVAMIM / ImageClassifier run with an EVAViT backbone '
                 '(work_dirs/*/epoch_*.pth)')
def convert_own_run(sd, patch_size=None, **_):
    """A checkpoint of our own MIM pretraining or classification fine-tune -> its backbone,
    for transfer (e.g. ``--patch-size 16`` for detection / segmentation, as EVA-01 did with
    ``eva_psz14.pt``). Task heads (``head.*``, the MIM ``lm_head`` or a classifier) are
    dropped: the target task builds its own. The names are already ``EVAViT``'s."""
    out = {k: v for k, v in sd.items() if k.startswith('backbone.')}
    return change_patch_size(out, patch_size)
