"""Fixes for the pinned stack, applied when ``projects.eva`` is imported.

* torch >= 2.6 loads with ``weights_only=True``; mmengine 0.10.7 checkpoints (``--resume``,
  ``load_from``) hold a few mmengine/numpy objects (mmengine issue 1655). We allow exactly
  those types, and stop ``HistoryBuffer`` from pickling function references (its default
  statistics are rebuilt on load anyway), so checkpoints written by our runs load with
  ``weights_only=True``: loading never executes code from a file. Only ``Runner.resume`` --
  the runner's own checkpoint, named by the user -- falls back to full unpickling for
  checkpoints written by other mmengine runs.
* Checkpoints are written atomically (temporary file + ``os.replace``).
* The mmaction2 1.2.0 wheel lacks ``mmaction/models/localizers/drn`` which
  ``mmaction.models`` imports: a placeholder module stands in for that one model.
* ``lvis`` 0.5.3 uses ``np.float`` (gone in numpy >= 1.24): :func:`patch_lvis_numpy2`.
* mmengine's pytorch launcher calls ``torch.cuda.set_device`` even for gloo: on a machine
  without CUDA, ``tools/dist_train.sh`` would fail before training (CPU scale-out tests).
"""
import sys
import types

import numpy as np
import torch


def _allow_mmengine_checkpoints():
    from mmengine.logging import HistoryBuffer
    from mmengine.config import ConfigDict
    allowed = [HistoryBuffer, ConfigDict, np.dtype, np.ndarray, np.generic, np.float64,
               np.float32, np.int64, np.int32, np.bool_]
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    allowed += [_reconstruct, scalar]
    allowed += [type(np.dtype(t)) for t in ('float64', 'float32', 'int64', 'int32', 'bool',
                                            'uint8', 'int8', 'float16')]
    torch.serialization.add_safe_globals(allowed)


def _history_buffer_without_functions():
    from mmengine.logging import HistoryBuffer
    if getattr(HistoryBuffer, '_eva_safe_pickle', False):
        return

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop('statistics_methods', None)  # functions: defaults restored by __setstate__
        return state

    HistoryBuffer.__getstate__ = __getstate__
    HistoryBuffer._eva_safe_pickle = True


def _resume_with_full_unpickling_fallback():
    """``Runner.resume`` may read other mmengine runs' checkpoints (function references)."""
    import functools
    import pickle

    from mmengine.runner import FlexibleRunner, Runner

    def wrap(resume):
        if getattr(resume, '_eva_wrapped', False):
            return resume

        @functools.wraps(resume)
        def wrapped(self, *args, **kwargs):
            try:
                return resume(self, *args, **kwargs)
            except pickle.UnpicklingError as e:
                if 'Weights only load failed' not in str(e):
                    raise
                self.logger.warning('resume checkpoint needs full unpickling (written by '
                                    'another mmengine run); loading it as trusted')
                original = torch.load
                torch.load = functools.partial(original, weights_only=False)
                try:
                    return resume(self, *args, **kwargs)
                finally:
                    torch.load = original

        wrapped._eva_wrapped = True
        return wrapped

    Runner.resume = wrap(Runner.resume)
    FlexibleRunner.resume = wrap(FlexibleRunner.resume)


def _atomic_local_writes():
    """mmengine writes checkpoints with ``LocalBackend.put``: write a temporary file in the
    same folder, fsync, then ``os.replace`` it, so a crash while saving never leaves a
    truncated checkpoint under the final name."""
    import os

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


def _shim_mmaction_drn():
    name = 'mmaction.models.localizers.drn.drn'
    if name in sys.modules:
        return
    try:
        import importlib.util
        if importlib.util.find_spec('mmaction') is None:
            return
        import mmaction
        import os
        if os.path.isdir(os.path.join(os.path.dirname(mmaction.__file__), 'models',
                                      'localizers', 'drn')):
            return  # a fixed mmaction2 ships the real module
    except Exception:  # pragma: no cover
        return
    pkg = types.ModuleType('mmaction.models.localizers.drn')
    pkg.__path__ = []
    mod = types.ModuleType(name)

    class DRN:  # noqa: D401 - placeholder
        """Placeholder: the mmaction2 1.2.0 wheel does not ship DRN."""

        def __init__(self, *args, **kwargs):
            raise ImportError('DRN is missing from the mmaction2 1.2.0 wheel '
                              '(mmaction/models/localizers/drn); it is not used by EVA')

    mod.DRN = DRN
    pkg.drn = mod
    sys.modules[pkg.__name__] = pkg
    sys.modules[name] = mod


def _cpu_dist_init():
    from mmengine.dist import utils
    if getattr(utils._init_dist_pytorch, '_eva_cpu', False):
        return
    original = utils._init_dist_pytorch

    def init(backend='nccl', init_backend='torch', **kwargs):
        if torch.cuda.is_available() or init_backend != 'torch':
            return original(backend, init_backend=init_backend, **kwargs)
        torch.distributed.init_process_group(backend=backend, **kwargs)  # CPU: no set_device

    init._eva_cpu = True
    utils._init_dist_pytorch = init


def patch_lvis_numpy2():
    """Called by the detection package before the LVIS metric imports ``lvis``."""
    if 'float' not in np.__dict__:
        np.float = float  # lvis 0.5.3 eval.py


def apply():
    _allow_mmengine_checkpoints()
    _history_buffer_without_functions()
    _resume_with_full_unpickling_fallback()
    _atomic_local_writes()
    _shim_mmaction_drn()
    _cpu_dist_init()
