"""Safe weight loading shared by converters, teachers and backbones.

Weight files are read with ``torch.load(weights_only=True)``: loading a checkpoint never runs
code from it. Only the runner's own resume checkpoints need more (see :mod:`.compat`).
Checkpoints are written atomically (:func:`atomic_local_writes`).
"""
import argparse
import collections
import os
from typing import Mapping

import torch

CONTAINER_KEYS = ('model', 'module', 'state_dict')

# What the official training scripts put next to the weights, and nothing more: BEiT / MAE
# style ``save_model`` (EVA-01 MIM, classification, linear probe) stores ``'args'`` as an
# ``argparse.Namespace``; the video trainer (Swin-style ``save_checkpoint``) stores
# ``'config'`` as a yacs ``CfgNode``, a dict subclass that is read here as a plain
# ``OrderedDict`` (yacs is never imported, no code of it runs).
OFFICIAL_CONTAINER_GLOBALS = [argparse.Namespace,
                              (collections.OrderedDict, 'yacs.config.CfgNode')]
ZIP_MAGIC, PICKLE_PROTO = b'PK\x03\x04', 0x80


def is_safetensors(head: bytes) -> bool:
    """A safetensors file (timm / HF hub ``model.safetensors``): an 8-byte little-endian
    header length, then the JSON header."""
    return len(head) >= 9 and head[8:9] == b'{' and \
        0 < int.from_bytes(head[:8], 'little') < 100_000_000


def _check_file(path: str) -> bytes:
    """A clear error for what is not a checkpoint at all (before ``torch.load`` raises a
    bare ``EOFError`` / ``UnpicklingError``); returns the file's first bytes."""
    if not os.path.isfile(path):
        if os.path.isdir(path):
            raise IsADirectoryError(f'{path} is a folder, not a checkpoint file')
        raise FileNotFoundError(f'checkpoint not found: {path}')
    with open(path, 'rb') as f:
        head = f.read(9)
    if not head:
        raise ValueError(f'{path}: empty file (0 bytes), not a checkpoint')
    if head[:4] != ZIP_MAGIC and head[0] != PICKLE_PROTO and not is_safetensors(head):
        raise ValueError(f'{path}: not a PyTorch checkpoint (starts with {head[:4]!r}; '
                         'torch.save writes a zip archive or a pickle, safetensors a '
                         'length-prefixed JSON header)')
    return head


def load_weights(path: str) -> dict:
    """``torch.load`` a weights file safely (``weights_only=True`` plus
    :data:`OFFICIAL_CONTAINER_GLOBALS`), with errors that name the file and, for a refused
    pickle, the types it holds and how to convert it. Safetensors files (tensors only, no
    code by construction) are read with ``safetensors``."""
    if is_safetensors(_check_file(path)):
        from safetensors.torch import load_file
        try:
            return load_file(path, device='cpu')
        except Exception as e:  # truncated / corrupt header
            raise RuntimeError(f'cannot load weights from {path} (safetensors): '
                               f'{type(e).__name__}: {e}') from e
    try:
        with torch.serialization.safe_globals(OFFICIAL_CONTAINER_GLOBALS):
            return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # corrupt file, pickle with code, TorchScript...
        refused = _refused_globals(path)
        if refused:
            raise RuntimeError(
                f'cannot load weights from {path}: it pickles {refused}, which loading with '
                'weights_only=True refuses (unpickling them could run code; allowed besides '
                'tensors and plain containers: argparse.Namespace, yacs CfgNode). If you '
                'trust the file, keep only its tensors once: python -c "import torch; '
                f"c = torch.load('{path}', weights_only=False); "
                "torch.save({'model': c.get('model', c)}, 'weights.pth')\"") from e
        raise RuntimeError(f'cannot load weights from {path}: {type(e).__name__}: {e}') from e


def _refused_globals(path: str) -> list:
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip checkpoint: nothing to name
        return []
    allowed = {'argparse.Namespace', 'yacs.config.CfgNode'}
    safe = {f'{g.__module__}.{g.__qualname__}' for g in torch.serialization.get_safe_globals()
            if not isinstance(g, tuple) and hasattr(g, '__qualname__')}
    return sorted(g for g in found if g not in allowed | safe)


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
