"""Safe weight loading shared by converters, teachers and backbones.

Weight files are read with ``torch.load(weights_only=True)``: loading a checkpoint never runs
code from it. Only the runner's own resume checkpoints need more (see :mod:`.compat`).
"""
import os
from typing import Mapping

import torch

CONTAINER_KEYS = ('model', 'module', 'state_dict')


def load_weights(path: str) -> dict:
    """``torch.load`` a weights file safely, with errors that name the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # corrupt file, pickle with code, TorchScript...
        raise RuntimeError(f'cannot load weights from {path}: {type(e).__name__}: {e}') from e


def unwrap_state_dict(ckpt: Mapping) -> dict:
    """Find the tensors in EVA-01's containers: ``model`` -> ``module`` -> ``state_dict`` ->
    the bare dict, and strip a DDP ``module.`` prefix."""
    if not isinstance(ckpt, Mapping):
        raise TypeError(f'expected a dict checkpoint, got {type(ckpt).__name__}')
    for key in CONTAINER_KEYS:
        if key in ckpt and isinstance(ckpt[key], Mapping):
            ckpt = ckpt[key]
            break
    sd = {k: v for k, v in ckpt.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise KeyError(f'no tensors in checkpoint; top-level keys: {sorted(ckpt)[:10]}')
    if all(k.startswith('module.') for k in sd):
        sd = {k[len('module.'):]: v for k, v in sd.items()}
    return sd
