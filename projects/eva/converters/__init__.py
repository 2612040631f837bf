"""Checkpoint conversion: detect the format of a released EVA-01 (or timm / mmpretrain)
checkpoint and map it to this project's models.

Each task module registers its formats with :func:`register_format`; ``convert`` tries them
in registration order. ``tools/model_converters/eva_to_mm.py`` is the command line.
"""
import importlib
from typing import Callable, Dict, List, NamedTuple, Optional

import torch

from ..checkpoint import load_weights, unwrap_state_dict


class Format(NamedTuple):
    name: str  # short id, what ``--format NAME`` takes
    detect: Callable[[Dict[str, torch.Tensor]], bool]
    convert: Callable[..., Dict[str, torch.Tensor]]
    description: str = ''  # the released files it covers
    explain: Optional[Callable[[Dict[str, torch.Tensor]], Optional[str]]] = None


FORMATS: List[Format] = []
TASK_MODULES = ('backbone', 'detection', 'segmentation', 'video', 'clip', 'eva02',
                'eva02_clip')


def register_format(name: str, detect: Callable[[dict], bool], description: str = '',
                    explain: Optional[Callable[[dict], Optional[str]]] = None):
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
        FORMATS.append(Format(name, detect, fn, description, explain))
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


def format_names() -> List[str]:
    _load_task_modules()
    return [f.name for f in FORMATS]


def _known() -> str:
    return '; '.join(f'{f.name} ({f.description})' if f.description else f.name
                     for f in FORMATS)


def get_format(name: str) -> Format:
    """The format called ``name`` (``--format NAME``)."""
    _load_task_modules()
    for fmt in FORMATS:
        if fmt.name == name:
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
                       format: Optional[str] = None, **options) -> dict:
    """Load ``src``, detect its format (or take ``format``) and return
    ``{'state_dict': ..., 'meta': ...}`` with fp32 tensors, ready for ``load_from`` /
    ``init_cfg=Pretrained``."""
    sd = source_state_dict(load_weights(src))
    fmt = detect_format(sd, format)
    dropped: Dict[str, str] = {}
    out = fmt.convert(sd, patch_size=patch_size, dropped=dropped, **options)
    out = {k: v.float() if v.is_floating_point() else v for k, v in out.items()}
    meta = dict(source=src, source_format=fmt.name, patch_size=patch_size)
    if dropped:
        meta['dropped'] = dropped
    return dict(state_dict=out, meta=meta)


__all__ = ['register_format', 'detect_format', 'get_format', 'format_names',
           'convert_checkpoint', 'source_state_dict']
