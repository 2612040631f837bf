"""Checkpoint conversion: detect the format of a released EVA-01 / EVA-02 (or timm /
mmpretrain) checkpoint and map it to this project's models.

Each task module registers its formats with :func:`register_format`; ``convert`` tries them
in registration order. A converter is key renames (:func:`rename_keys`) plus the state-dict
functions of ``models/vit_adapt.py`` that ``EVAViT``'s load hook uses too (patch-size change,
position tables, tubelet kernels, RoPE tables). ``tools/model_converters/eva_to_mm.py`` is
the command line.
"""
import importlib
import re
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch

from ..loader import load_weights, unwrap_state_dict


class Format(NamedTuple):
    name: str  # short id, what ``--format NAME`` takes
    detect: Callable[[Dict[str, torch.Tensor]], bool]
    convert: Callable[..., Dict[str, torch.Tensor]]
    description: str = ''  # the released files it covers
    explain: Optional[Callable[[Dict[str, torch.Tensor]], Optional[str]]] = None
    aliases: Tuple[str, ...] = ()  # earlier names, still accepted by ``--format``


FORMATS: List[Format] = []
TASK_MODULES = ('backbone', 'detection', 'segmentation', 'video', 'clip', 'eva02',
                'eva02_clip', 'dino')


def register_format(name: str, detect: Callable[[dict], bool], description: str = '',
                    explain: Optional[Callable[[dict], Optional[str]]] = None,
                    aliases: Sequence[str] = ()):
    """Decorator: ``convert(state_dict, **options) -> state_dict`` for checkpoints where
    ``detect(state_dict)`` holds. ``detect`` must check everything that defines the format
    (keys *and* shapes): two formats that both accept a checkpoint make it ambiguous, and
    the user must choose with ``--format``. ``explain(sd)`` optionally says why a
    checkpoint of the same family is not this format (shown when nothing matches)."""

    def wrap(fn):
        for i, f in enumerate(FORMATS):
            if f.name == name:
                if f.convert.__module__ != fn.__module__:
                    raise ValueError(f'format name {name!r} registered twice '
                                     f'({f.convert.__module__}, {fn.__module__})')
                del FORMATS[i]  # a reloaded module replaces its own entry
                break
        FORMATS.append(Format(name, detect, fn, description, explain, tuple(aliases)))
        return fn

    return wrap


def _load_task_modules():
    for name in TASK_MODULES:
        try:
            importlib.import_module(f'{__name__}.{name}')
        except ModuleNotFoundError as e:
            if e.name != f'{__name__}.{name}':
                raise
    # formats of other modules in this package (e.g. EVA-02's), registered on import
    import pkgutil
    for info in pkgutil.iter_modules(__path__):
        if info.name not in TASK_MODULES and not info.name.startswith('_'):
            importlib.import_module(f'{__name__}.{info.name}')


# the tensors of a checkpoint, from any of EVA-01's containers, ``module.`` stripped
source_state_dict = unwrap_state_dict
# EMA weights beside the trained ones: timm / the official classification scripts
# (``model_ema``), detectron2's EMA hook of EVA-02 det (``ema_state``)
EMA_CONTAINERS = ('model_ema', 'ema_state')


def pick_weights(ckpt, ema: bool = True) -> Tuple[Dict[str, torch.Tensor], str]:
    """The tensors to convert and the container they came from. EMA weights are preferred
    when the file has them (as timm does; ``ema=False`` takes the trained weights)."""
    if ema and isinstance(ckpt, dict):
        for key in EMA_CONTAINERS:
            if isinstance(ckpt.get(key), dict) and any(
                    isinstance(v, torch.Tensor) for v in ckpt[key].values()):
                return source_state_dict(ckpt[key]), key
    container = next((k for k in ('model', 'module', 'state_dict')
                      if isinstance(ckpt, dict) and isinstance(ckpt.get(k), dict)), '')
    return source_state_dict(ckpt), container


def rename_keys(sd: Dict[str, torch.Tensor], rules: Sequence[Tuple[str, str]]
                ) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Apply ``(pattern, replacement)`` rules to every key, the first match wins: returns the
    renamed tensors and the keys no rule covers."""
    compiled = [(re.compile(p), r) for p, r in rules]
    out, left = {}, []
    for k, v in sd.items():
        for pattern, repl in compiled:
            if pattern.match(k):
                out[pattern.sub(repl, k, count=1)] = v
                break
        else:
            left.append(k)
    return out, left


def require_mapped(fmt: str, left: Sequence[str]) -> None:
    """Every source tensor is mapped or dropped by a named rule: the rest is an error."""
    if left:
        raise KeyError(f'{fmt}: {len(left)} source tensors have no mapping: {sorted(left)[:10]}')


def drop_rope(sd: Dict[str, torch.Tensor], dropped: Optional[Dict[str, str]] = None
              ) -> Dict[str, torch.Tensor]:
    """Without EVA-02's stored RoPE tables (``rope``, ``rope_win``/``rope_glb``, per block
    ``attn.rope``), said once in ``dropped``: ``EVAViT`` computes RoPE for every grid."""
    from ..models.vit_adapt import drop_rope_tables
    kept = drop_rope_tables(sd)
    if len(kept) != len(sd) and dropped is not None:
        dropped[f'{len(sd) - len(kept)} RoPE tables (*rope*.freqs_cos/sin)'] = \
            'EVAViT computes RoPE for the actual token grid; stored tables are never loaded'
    return kept


def format_names(aliases: bool = False) -> List[str]:
    _load_task_modules()
    return [n for f in FORMATS for n in (f.name, *(f.aliases if aliases else ()))]


def _known() -> str:
    return '; '.join(f'{f.name} ({f.description})' if f.description else f.name
                     for f in FORMATS)


def get_format(name: str) -> Format:
    """The format called ``name`` (``--format NAME``)."""
    _load_task_modules()
    for fmt in FORMATS:
        if name == fmt.name or name in fmt.aliases:
            return fmt
    raise ValueError(f'unknown format name {name!r}; known formats: {format_names()}')


def detect_format(sd: Dict[str, torch.Tensor], name: Optional[str] = None) -> Format:
    """The one format whose keys and shapes ``sd`` has; ``name`` forces one (the converter
    still maps every tensor or fails)."""
    if name is not None:
        return get_format(name)
    _load_task_modules()
    hits = [fmt for fmt in FORMATS if fmt.detect(sd)]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise ValueError(f'ambiguous checkpoint: its keys and shapes fit {len(hits)} formats, '
                         f'{[f.name for f in hits]}; choose one with --format NAME')
    sample = sorted(sd)[:12]
    why = [f'{f.name}: {reason}' for f in FORMATS if f.explain
           for reason in [f.explain(sd)] if reason]
    raise ValueError(f'unknown checkpoint format: {len(sd)} tensors, keys like {sample}'
                     + (f'; near misses: {why}' if why else '')
                     + f'; known formats: {_known()}')


def convert_checkpoint(src: str, patch_size: Optional[int] = None,
                       format: Optional[str] = None, num_frames: Optional[int] = None,
                       ema: bool = True, **options) -> dict:
    """Load ``src``, detect its format (or take ``format``) and return
    ``{'state_dict': ..., 'meta': ...}`` with fp32 tensors, ready for ``load_from`` /
    ``init_cfg=Pretrained``. ``num_frames``: an image checkpoint becomes the initial weights
    of a video model of that many frames (see ``video.image_weights_for_video``); ``ema``:
    take a file's EMA weights when it has them (``meta['weights']`` says which were used)."""
    sd, container = pick_weights(load_weights(src), ema)
    fmt = detect_format(sd, format)
    dropped: Dict[str, str] = {}
    out = fmt.convert(sd, patch_size=patch_size, dropped=dropped, **options)
    if num_frames is not None:
        from .video import image_weights_for_video
        out = image_weights_for_video(out, num_frames, fmt.name)
    out = {k: v.float() if v.is_floating_point() else v for k, v in out.items()}
    meta = dict(source=src, source_format=fmt.name, patch_size=patch_size, weights=container)
    if num_frames is not None:
        meta['num_frames'] = num_frames
    if dropped:
        meta['dropped'] = dropped
    return dict(state_dict=out, meta=meta)


__all__ = ['register_format', 'detect_format', 'get_format', 'format_names',
           'convert_checkpoint', 'source_state_dict', 'pick_weights', 'rename_keys',
           'require_mapped']
