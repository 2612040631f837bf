"""Image-backbone checkpoints: EVA-01 MIM / classification / EVA-CLIP vision encoder, timm
``Eva`` and mmpretrain ``BEiTViT`` (eva-g) -> ``EVAViT`` (+ MIM or classification head).

Every source tensor is either mapped or dropped for a stated reason; a key no rule covers is
an error, so nothing is lost silently.
"""
import re
from typing import Dict, Optional

import torch
import torch.nn.functional as F

from . import register_format

EVA_BLOCK_KEY = re.compile(
    r'^blocks\.\d+\.(norm1|norm2)\.(weight|bias)$|'
    r'^blocks\.\d+\.attn\.(qkv\.weight|q_bias|v_bias|proj\.weight|proj\.bias)$|'
    r'^blocks\.\d+\.mlp\.(fc1|fc2)\.(weight|bias)$')
EVA_EMBED_KEYS = ('cls_token', 'pos_embed', 'patch_embed.proj.weight', 'patch_embed.proj.bias')


def _is_eva01_layout(sd: Dict[str, torch.Tensor]) -> bool:
    """An EVA-01 *image* ViT (video checkpoints have a 5-D patch kernel: converters/video.py).
    timm's EVA-02 Ti/S share the names but have a GLU ``fc1`` (twice ``fc2``'s input):
    converters/eva02.py."""
    fc1, fc2 = sd.get('blocks.0.mlp.fc1.weight'), sd.get('blocks.0.mlp.fc2.weight')
    glu = fc1 is not None and fc2 is not None and fc1.shape[0] == 2 * fc2.shape[1]
    return 'blocks.0.attn.q_bias' in sd and 'blocks.0.attn.qkv.weight' in sd \
        and sd.get('patch_embed.proj.weight', torch.empty(0)).ndim == 4 and not glu


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


# ------------------------------------------------------------------ EVA-01 MIM
@register_format('eva01-mim (eva_psz14.pt, eva_psz14to16.pt)',
                 lambda sd: _is_eva01_layout(sd) and 'lm_head.weight' in sd)
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
CLIP_EMBED_DIM = 1024  # EVA-CLIP's 1408 -> 1024 projection, stored as ``head``


def _is_clip_projection_head(sd):
    return 'head.weight' in sd and sd['head.weight'].shape[0] == CLIP_EMBED_DIM \
        and 'fc_norm.weight' not in sd


def _is_eva01_cls(sd):
    return _is_eva01_layout(sd) and 'lm_head.weight' not in sd and \
        ('fc_norm.weight' in sd or ('head.weight' in sd and not _is_clip_projection_head(sd)))


@register_format('eva01-cls / timm Eva (eva_21k_*.pt, eva_21k_1k_*_ema_*.pt)', _is_eva01_cls)
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


# ------------------------------------------------------------------ EVA-CLIP vision tower
def _is_clip_vision(sd):
    if any(k.startswith('text.') for k in sd):
        return False  # the full EVA-CLIP model: see converters/clip.py
    if all(k.startswith('visual.') for k in sd):
        sd = {k[len('visual.'):]: v for k, v in sd.items()}
    return _is_eva01_layout(sd) and 'norm.weight' in sd and 'fc_norm.weight' not in sd \
        and 'lm_head.weight' not in sd and 'mask_token' not in sd \
        and ('head.weight' not in sd or _is_clip_projection_head(sd))


@register_format('eva-clip vision encoder (eva_clip_psz14_vision_enc.pt, visual.* only)',
                 _is_clip_vision)
def convert_eva_clip_vision(sd, patch_size=None, **_):
    """-> backbone with its final ``norm`` (the CLIP tower pools the normed cls token); the
    1408 -> 1024 CLIP projection ``head`` is kept as ``clip_projection`` (unused by
    classifiers, which train a new head)."""
    if all(k.startswith('visual.') for k in sd):
        sd = {k[len('visual.'):]: v for k, v in sd.items()}
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


@register_format('mmpretrain BEiTViT eva-g (beit-g-p14_*eva*, beit-g-p16_*eva*)',
                 lambda sd: 'backbone.layers.0.attn.q_bias' in sd
                 and 'backbone.patch_embed.projection.weight' in sd)
def convert_mmpretrain_beit(sd, patch_size=None, **_):
    """mmpretrain's ``eva_to_mmpretrain.py`` put both EVA-01's final ``norm`` and ``fc_norm``
    into ``ln2``: it is ``fc_norm`` when the checkpoint has a classifier head, else ``norm``."""
    ln2_target = 'backbone.fc_norm.' if 'head.fc.weight' in sd else 'backbone.norm.'
    out, left = {}, []
    for k, v in sd.items():
        if k.startswith('backbone.ln2.'):
            out[ln2_target + k.split('.')[-1]] = v
            continue
        if re.search(r'layers\.\d+\.gamma_[12]$', k) or 'relative_position' in k:
            raise KeyError(f'{k}: layer scale / relative position bias are not part of EVA-01 '
                           '(was the BEiTViT built with layer_scale_init_value=0, '
                           'use_rel_pos_bias=False?)')
        for pattern, repl in MMPRETRAIN_RULES:
            if re.match(pattern, k):
                out[re.sub(pattern, repl, k)] = v
                break
        else:
            if k in ('lm_head.weight', 'lm_head.bias'):  # eva_to_mmpretrain keeps MIM lm_head
                out['head.' + k] = v
            else:
                left.append(k)
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


@register_format('this project: EVAMIM / ImageClassifier run with an EVAViT backbone '
                 '(work_dirs/*/epoch_*.pth)', _is_own_image_run)
def convert_own_run(sd, patch_size=None, **_):
    """A checkpoint of our own MIM pretraining or classification fine-tune -> its backbone,
    for transfer (e.g. ``--patch-size 16`` for detection / segmentation, as EVA-01 did with
    ``eva_psz14.pt``). Task heads (``head.*``, the MIM ``lm_head`` or a classifier) are
    dropped: the target task builds its own. The names are already ``EVAViT``'s."""
    out = {k: v for k, v in sd.items() if k.startswith('backbone.')}
    return change_patch_size(out, patch_size)
