"""Safe weight loading shared by converters, teachers and backbones.

Weight files are read with ``torch.load(weights_only=True)``: loading a checkpoint never runs
code from it. Only the runner's own resume checkpoints need more (see :mod:`.compat`).
Checkpoints are written atomically (:func:`atomic_local_writes`).
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


def atomic_local_writes():
    """mmengine writes checkpoints with ``LocalBackend.put``: write a temporary file in the
    same folder, fsync, then ``os.replace`` it, so a crash while saving never leaves a
    truncated checkpoint under the final name. Installed by ``projects/eva/__init__.py``."""
    from mmengine.fileio.backends import LocalBackend
    if getattr(LocalBackend, '_eva_atomic', False):
        return

    def put(self, obj: bytes, filepath) -> None:
        filepath = str(filepath)
        folder = os.path.dirname(filepath)
        if folder:
            os.makedirs(folder, exist_ok=True)
        tmp = f'{filepath}.tmp{os.getpid()}'
        try:
            with open(tmp, 'wb') as f:
                f.write(obj)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, filepath)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    LocalBackend.put = put
    LocalBackend._eva_atomic = True
