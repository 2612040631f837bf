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
    name: str
    detect: Callable[[Dict[str, torch.Tensor]], bool]
    convert: Callable[..., Dict[str, torch.Tensor]]


FORMATS: List[Format] = []
TASK_MODULES = ('backbone', 'detection', 'segmentation', 'video', 'clip', 'eva02')


def register_format(name: str, detect: Callable[[dict], bool]):
    """Decorator: ``convert(state_dict, **options) -> state_dict`` for checkpoints where
    ``detect(state_dict)`` holds."""

    def wrap(fn):
        FORMATS.append(Format(name, detect, fn))
        return fn

    return wrap


def _load_task_modules():
    for name in TASK_MODULES:
        try:
            importlib.import_module(f'{__name__}.{name}')
        except ModuleNotFoundError as e:
            if e.name != f'{__name__}.{name}':
                raise


# the tensors of a checkpoint, from any of EVA-01's containers, ``module.`` stripped
source_state_dict = unwrap_state_dict


def detect_format(sd: Dict[str, torch.Tensor]) -> Format:
    _load_task_modules()
    for fmt in FORMATS:
        if fmt.detect(sd):
            return fmt
    sample = sorted(sd)[:12]
    raise ValueError(f'unknown checkpoint format: {len(sd)} tensors, keys like {sample}; '
                     f'known formats: {[f.name for f in FORMATS]}')


def convert_checkpoint(src: str, patch_size: Optional[int] = None, **options) -> dict:
    """Load ``src``, detect its format and return ``{'state_dict': ..., 'meta': ...}``
    with fp32 tensors, ready for ``load_from`` / ``init_cfg=Pretrained``."""
    sd = source_state_dict(load_weights(src))
    fmt = detect_format(sd)
    out = fmt.convert(sd, patch_size=patch_size, **options)
    out = {k: v.float() if v.is_floating_point() else v for k, v in out.items()}
    return dict(state_dict=out, meta=dict(source=src, source_format=fmt.name,
                                          patch_size=patch_size))


__all__ = ['register_format', 'detect_format', 'convert_checkpoint', 'source_state_dict']
