"""The one checkpoint loader: every file the project reads weights from comes through here.

Tools, hooks, ``--resume`` (with and without a path), ``load_from``, ``init_cfg=Pretrained``,
the MIM teacher, the converters and the Python API all call :func:`read_checkpoint`
(mmengine's own loading reaches it through the local-file scheme that
:func:`projects.eva.compat.apply` registers). What it guarantees:

* **No code runs.** Files are read with ``torch.load(weights_only=True)``: tensors, plain
  containers and the data-only types below, nothing else. A checkpoint that pickles anything
  more is refused with its name, the types it holds and the way out. Full unpickling happens
  only when the user opts in -- ``EVA_TRUST_CHECKPOINTS=1`` in the environment, or
  ``--trust-checkpoint`` on ``tools/train.py`` / ``test.py`` / ``inference.py`` (which set
  it) -- and never as a fallback.
* **Bad files are named:** missing, a folder, empty (0 bytes), not a checkpoint at all
  (random bytes, an image), truncated, a safetensors file with a broken header.
* **Non-finite weights are named** (parameter names, first few) before anything uses them.

:func:`unwrap_state_dict` finds the tensors in the official containers; :func:`check_fit` is
the one structural fit rule that says whether they fill a model (used by the door
:func:`projects.eva.apis.build.build_model`, ``init_cfg`` and ``CheckpointFitHook``).
"""
import argparse
import collections
import os
import os.path as osp
import re
from typing import Dict, List, Mapping, Optional, Sequence

import torch

CONTAINER_KEYS = ('model', 'module', 'state_dict')
TRUST_ENV = 'EVA_TRUST_CHECKPOINTS'
TRUST_HINT = (f'if you trust the file and its source, allow full unpickling explicitly: '
              f'{TRUST_ENV}=1 in the environment, or --trust-checkpoint on tools/train.py, '
              'tools/test.py and tools/inference.py (docs/reliability.md)')

# What the official training scripts put next to the weights, and nothing more: BEiT / MAE
# style ``save_model`` (EVA-01 MIM, classification, linear probe) stores ``'args'`` as an
# ``argparse.Namespace``; the video trainer (Swin-style ``save_checkpoint``) stores
# ``'config'`` as a yacs ``CfgNode``, a dict subclass that is read here as a plain
# ``OrderedDict`` (yacs is never imported, no code of it runs).
OFFICIAL_CONTAINER_GLOBALS = [argparse.Namespace,
                              (collections.OrderedDict, 'yacs.config.CfgNode')]
ZIP_MAGIC, PICKLE_PROTO = b'PK\x03\x04', 0x80


def runner_globals() -> list:
    """Data-only types that mmengine 0.10.7 runs store in their checkpoints: the message hub's
    ``HistoryBuffer`` (pickled without its function table, see
    :func:`projects.eva.compat.weights_only_resume`), ``ConfigDict`` and numpy scalars /
    arrays in ``meta``."""
    import numpy as np
    from mmengine.config import ConfigDict
    from mmengine.logging import HistoryBuffer
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    return ([HistoryBuffer, ConfigDict, np.dtype, np.ndarray, np.generic, np.float64,
             np.float32, np.int64, np.int32, np.bool_, _reconstruct, scalar] +
            [type(np.dtype(t)) for t in ('float64', 'float32', 'int64', 'int32', 'bool',
                                         'uint8', 'int8', 'float16')])


def trusted() -> bool:
    """Whether the user opted in to full unpickling (:data:`TRUST_ENV`)."""
    return os.environ.get(TRUST_ENV, '').strip().lower() in ('1', 'true', 'yes')


def is_safetensors(head: bytes) -> bool:
    """A safetensors file (timm / HF hub ``model.safetensors``): an 8-byte little-endian
    header length, then the JSON header."""
    return len(head) >= 9 and head[8:9] == b'{' and \
        0 < int.from_bytes(head[:8], 'little') < 100_000_000


def check_file(path: str) -> bytes:
    """A clear error for what is not a checkpoint at all (before ``torch.load`` raises a
    bare ``EOFError`` / ``UnpicklingError`` / ``UnicodeDecodeError``); returns the file's
    first bytes."""
    if not osp.isfile(path):
        if osp.isdir(path):
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


def local_file(path: str) -> str:
    """``path`` itself, or for an ``http(s)://`` URL the file downloaded once into torch's hub
    cache (``$TORCH_HOME/hub/checkpoints``), which is then read like any local file."""
    if not re.match(r'^https?://', str(path)):
        return osp.expanduser(str(path))
    from torch.hub import download_url_to_file, get_dir
    folder = osp.join(get_dir(), 'checkpoints')
    os.makedirs(folder, exist_ok=True)
    target = osp.join(folder, osp.basename(path.split('?')[0]))
    if not osp.isfile(target):
        download_url_to_file(path, target, progress=False)
    return target


def read_checkpoint(path: str, map_location='cpu', check_finite: bool = True):
    """Read a checkpoint file without running code from it (see the module docstring).

    Returns what the file holds (a dict for every checkpoint format the project knows).
    ``check_finite``: NaN / inf in the weights is an error naming the tensors."""
    path = local_file(path)
    head = check_file(path)
    if is_safetensors(head):
        from safetensors.torch import load_file
        try:
            ckpt = load_file(path, device='cpu')
        except Exception as e:  # truncated / corrupt header
            raise ValueError(f'cannot load weights from {path} (safetensors): '
                             f'{type(e).__name__}: {e}') from e
    else:
        ckpt = _torch_load(path, map_location)
    if check_finite:
        check_finite_weights(ckpt, path)
    return ckpt


def _torch_load(path: str, map_location):
    try:
        allowed = OFFICIAL_CONTAINER_GLOBALS + runner_globals()
    except ImportError:  # mmengine absent: the official containers only
        allowed = list(OFFICIAL_CONTAINER_GLOBALS)
    # ``safe_globals`` removes what it added on exit: only add what is not allowed already
    # (compat.apply() allow-lists the runner types for every torch.load of the process)
    present = torch.serialization.get_safe_globals()
    allowed = [g for g in allowed if g not in present]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt file, pickle with code, TorchScript...
        refused = _refused_globals(path, e)
        if not refused:
            raise ValueError(f'cannot load weights from {path}: not a complete checkpoint '
                             f'({type(e).__name__}: {str(e).strip()[:300]})') from e
        if trusted():
            import warnings
            warnings.warn(f'{path}: unpickling {refused} in full because {TRUST_ENV} is set')
            return torch.load(path, map_location=map_location, weights_only=False)
        raise UnsafeCheckpointError(
            f'refused to load {path}: it pickles {refused}, which loading with '
            'weights_only=True refuses (unpickling them could run code; allowed besides '
            'tensors and plain containers: argparse.Namespace, yacs CfgNode and the mmengine '
            f'/ numpy data types of runner checkpoints). {TRUST_HINT}. Or keep only its '
            'tensors once, in a trusted session: python -c "import torch; '
            f"c = torch.load('{path}', weights_only=False); "
            "torch.save({'state_dict': c.get('state_dict', c.get('model', c))}, "
            "'weights.pth')\"") from None


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint that needs full unpickling, without the user's opt-in."""


def _refused_globals(path: str, error: Exception) -> list:
    """The globals that ``weights_only`` refused: listed from a zip checkpoint, parsed from
    torch's message for the legacy format."""
    found = []
    try:
        found = list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - legacy (non-zip) format: read torch's message
        pass
    text = str(error)
    found += re.findall(r'Unsupported global: GLOBAL ([\w.]+)', text)
    if not found and 'Weights only load failed' in text:
        m = re.search(r'Unsupported operand \d+|Unsupported class [\w.]+|'
                      r'Trying to [\w ]+ [\w.]+', text)
        found = [m.group(0) if m else 'an object weights_only cannot read']
    allowed = {'argparse.Namespace', 'yacs.config.CfgNode'}
    safe = {f'{g.__module__}.{g.__qualname__}' for g in torch.serialization.get_safe_globals()
            if not isinstance(g, tuple) and hasattr(g, '__qualname__')}
    return sorted(set(g for g in found if g not in allowed | safe))


def weights_of(ckpt) -> dict:
    """The tensors of ``ckpt``'s weights, leniently (no error when there are none)."""
    if not isinstance(ckpt, Mapping):
        return {}
    for key in CONTAINER_KEYS:
        if key in ckpt and isinstance(ckpt[key], Mapping):
            ckpt = ckpt[key]
            break
    return {k: v for k, v in ckpt.items() if isinstance(v, torch.Tensor)}


def check_finite_weights(ckpt, path: str, limit: int = 5) -> None:
    """NaN / inf in a checkpoint's weights is an error naming the file and the tensors: such
    a checkpoint evaluated to accuracy 0 with ``"score": NaN`` and exit 0, and a resumed run
    blamed the first iteration after it."""
    from .engine.checkpoint import all_finite
    floats = {k: v for k, v in weights_of(ckpt).items()
              if v.is_floating_point() and v.numel() and v.device.type != 'meta'}
    if all_finite(floats.values()):
        return
    # -inf is how an additive attention mask blocks a position (open_clip's causal
    # ``text.attn_mask`` in the EVA-CLIP releases): a mask may hold inf, never NaN
    bad = [k for k, v in floats.items()
           if bool(torch.isnan(v).any() if k.endswith('mask') else ~torch.isfinite(v).all())]
    if not bad:
        return
    raise ValueError(f'{path}: {len(bad)} weight tensor(s) hold NaN or inf (first: '
                     f'{bad[:limit]}); the checkpoint was saved from a diverged run. Use an '
                     'earlier checkpoint.')


def load_weights(path: str) -> dict:
    """:func:`read_checkpoint` for weight files (converters, teachers, backbones)."""
    return read_checkpoint(path)


def unwrap_state_dict(ckpt: Mapping, source: Optional[str] = None) -> dict:
    """Find the tensors in EVA-01's containers: ``model`` -> ``module`` -> ``state_dict`` ->
    the bare dict, and strip a DDP ``module.`` prefix."""
    where = f'{source}: ' if source else ''
    if not isinstance(ckpt, Mapping):
        raise TypeError(f'{where}expected a dict checkpoint, got {type(ckpt).__name__}')
    sd = weights_of(ckpt)
    if not sd:
        raise KeyError(f'{where}no tensors in checkpoint; top-level keys: {sorted(ckpt)[:10]}')
    if all(k.startswith('module.') for k in sd):
        sd = {k[len('module.'):]: v for k, v in sd.items()}
    return sd


def load_from_local_safely(filename, map_location=None):
    """mmengine's local-file checkpoint scheme (``CheckpointLoader``), through
    :func:`read_checkpoint`: ``load_from``, ``--resume``, ``init_cfg=Pretrained`` and
    ``mmengine.runner.load_checkpoint`` read files here (registered by
    :func:`projects.eva.compat.apply`). The name keeps mmengine's log line ("by local
    backend")."""
    return read_checkpoint(filename, map_location=map_location)


load_from_local_safely.__name__ = 'load_from_local'


# ---------------------------------------------------------------------- the fit rule
# tensors EVAViT's load hook resizes / rebuilds (another resolution, frame count, window)
ADAPTED = ('pos_embed', 'patch_embed.proj.weight', 'rel_pos_h', 'rel_pos_w',
           'relative_position_bias_table')


def vits_in(model: torch.nn.Module) -> List[tuple]:
    """``(state-dict prefix, EVAViT)`` of every EVAViT in ``model``."""
    from .models.eva_vit import EVAViT
    return [(f'{name}.' if name else '', m) for name, m in model.named_modules()
            if isinstance(m, EVAViT)]


# ---------------------------------------------------------------------- the fit rule
class CheckpointFitError(ValueError):
    """A checkpoint that does not fill the model it is loaded into."""


def _structure(model: torch.nn.Module) -> Dict[str, List[str]]:
    """The groups a checkpoint must fill: every transformer block's attention and MLP
    weights (``EVAViT`` blocks); a model without an EVAViT: its backbone's parameters."""
    groups = {}
    vits = vits_in(model)
    for prefix, vit in vits:
        for i, blk in enumerate(vit.blocks):
            for part in ('attn', 'mlp'):
                keys = [f'{prefix}blocks.{i}.{part}.{n}'
                        for n, p in getattr(blk, part).named_parameters()
                        if n.endswith('weight') and p.dim() >= 2]
                if keys:
                    groups[f'{prefix}blocks.{i}.{part}'] = keys
    if not vits:
        backbone = getattr(model, 'backbone', None)
        prefix = 'backbone.' if isinstance(backbone, torch.nn.Module) else ''
        keys = [prefix + n for n, _ in (backbone if prefix else model).named_parameters()]
        if keys:
            groups[prefix.rstrip('.') or 'model'] = keys
    return groups


def check_fit(model: torch.nn.Module, state_dict: dict, source: str,
              head: str = 'required') -> None:
    """The one fit rule, before any weight is used (inference, export, ``tools/test.py``,
    ``--resume``, ``load_from``, ``init_cfg``).

    * Structure: every transformer block's attention and MLP weights are in the checkpoint
      with the model's shapes (keys relative to ``model``); a partial backbone is an error
      naming the missing groups -- never a share of tensors (34 of 60 tensors used to pass
      while every attention and MLP weight stayed random).
    * ``head='required'`` (test, inference, export, resume): every other parameter is there
      too, with its shape (tensors EVAViT's load hook resizes aside). ``head='optional'``: a
      backbone init (``init_cfg``, ``load_from`` of a model with another head) -- the rest
      may be missing or of another shape.
    """
    from .engine.checkpoint import describe_format, unwrap
    model = unwrap(model)
    if head not in ('required', 'optional'):
        raise ValueError(f"head must be 'required' or 'optional', got {head!r}")
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    sd_shapes = {k: tuple(v.shape) for k, v in state_dict.items()
                 if isinstance(v, torch.Tensor)}

    def misfits(keys):
        return [f'{k}: checkpoint {sd_shapes[k]} vs model {shapes[k]}' for k in keys
                if k in sd_shapes and k in shapes and sd_shapes[k] != shapes[k]
                and not k.endswith(ADAPTED)]

    problems = []
    groups = _structure(model)
    missing_groups = [g for g, keys in groups.items() if any(k not in sd_shapes for k in keys)]
    wrong = misfits([k for keys in groups.values() for k in keys])
    if missing_groups:
        what = ('attention / MLP weights of each transformer block' if vits_in(model)
                else 'the backbone of a model without an EVAViT')
        problems.append(f'{len(missing_groups)} of the {len(groups)} structural groups '
                        f'({what}) are missing: {_short(missing_groups)}')
    if head == 'required':
        params = [n for n, _ in model.named_parameters()]
        structural = {k for keys in groups.values() for k in keys}
        missing = [k for k in params if k not in sd_shapes and k not in structural]
        if missing:
            problems.append(f'{len(missing)} other parameter(s) are missing: {_short(missing)}')
        wrong += misfits([k for k in shapes if k not in structural])
    if wrong:
        problems.append(f'{len(wrong)} tensor(s) of another shape: {wrong[:5]}')
    if not problems:
        return
    from .engine.checkpoint import _prefixes
    raise CheckpointFitError(
        f'{source} does not fit the model {type(model).__name__}: ' + '; '.join(problems) +
        f'; checkpoint key prefixes: {_prefixes(sd_shapes)} ({len(sd_shapes)} tensors); model '
        f'key prefixes: {_prefixes(shapes)}; ' +
        (describe_format(state_dict) if sd_shapes else 'it holds no tensors') +
        '. Is it the checkpoint of this config?')


def _short(names: Sequence[str], limit: int = 6) -> str:
    names = list(names)
    return str(names[:limit]) + (f' and {len(names) - limit} more' if len(names) > limit
                                 else '')


def check_classes(checkpoint_classes, expected_classes, source: str, expected_from: str):
    """The checkpoint's ``dataset_meta`` classes must be the ones the config evaluates."""
    if not checkpoint_classes or not expected_classes:
        return
    a, b = [str(c) for c in checkpoint_classes], [str(c) for c in expected_classes]
    if a == b:
        return
    first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    detail = (f'first difference at index {first}: {a[first]!r} vs {b[first]!r}'
              if first < min(len(a), len(b)) else 'one list extends the other')
    raise CheckpointFitError(
        f'{source} was trained on {len(a)} classes {_short(a)}, but {expected_from} has '
        f'{len(b)} classes {_short(b)} ({detail}). Predictions would carry the wrong names; '
        'use the checkpoint of this dataset, or give the class names explicitly')


def checkpoint_dataset_meta(ckpt) -> dict:
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    return dict((meta or {}).get('dataset_meta') or {}) if isinstance(meta, dict) else {}
