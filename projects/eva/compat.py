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
  without CUDA, ``tools/dist_train.sh`` would fail before training (CPU scale-out tests);
  the same for DeepSpeed's ``init_backend='deepspeed'`` (``DS_ACCELERATOR=cpu`` runs).
* ``mmengine._strategy.deepspeed`` runs ``import deepspeed`` when ``mmengine.runner`` is
  imported (~4 s per process, every tool and test, also without a DeepSpeed config):
  :func:`_defer_deepspeed_import` imports it when a ``DeepSpeedStrategy`` is built (and on
  CPU skips the JIT build of an inference-only op: :func:`_skip_deepspeed_cpu_inference_op`).
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
        if torch.cuda.is_available() or init_backend not in ('torch', 'deepspeed'):
            return original(backend, init_backend=init_backend, **kwargs)
        if init_backend == 'deepspeed':  # CPU: no set_device
            import deepspeed
            deepspeed.init_distributed(dist_backend=backend, **kwargs)
        else:
            torch.distributed.init_process_group(backend=backend, **kwargs)

    init._eva_cpu = True
    utils._init_dist_pytorch = init


def _defer_deepspeed_import():
    """Import ``mmengine._strategy`` with ``deepspeed`` hidden, and give its module the real
    ``deepspeed`` when a ``DeepSpeedStrategy`` is constructed (its ``__init__`` asserts the
    module-level name and ``_wrap_model``/checkpointing use it)."""
    import importlib
    import importlib.util
    if 'mmengine._strategy' in sys.modules:  # already imported (with deepspeed, if present)
        module = sys.modules.get('mmengine._strategy.deepspeed')
    else:
        if importlib.util.find_spec('deepspeed') is None:
            return
        hidden = sys.modules.get('deepspeed', False)
        sys.modules['deepspeed'] = None  # `import deepspeed` raises ImportError
        try:
            module = importlib.import_module('mmengine._strategy.deepspeed')
        finally:
            if hidden is False:
                sys.modules.pop('deepspeed', None)
            else:
                sys.modules['deepspeed'] = hidden
    if module is None or getattr(module.DeepSpeedStrategy.__init__, '_eva_lazy', False):
        return
    original = module.DeepSpeedStrategy.__init__

    def __init__(self, *args, **kwargs):
        if module.deepspeed is None and importlib.util.find_spec('deepspeed') is not None:
            module.deepspeed = importlib.import_module('deepspeed')
            _skip_deepspeed_cpu_inference_op(module.deepspeed)
        original(self, *args, **kwargs)

    __init__._eva_lazy = True
    module.DeepSpeedStrategy.__init__ = __init__


def _skip_deepspeed_cpu_inference_op(deepspeed):
    """DeepSpeed's CPU backend JIT-compiles its shared-memory all-reduce op when the process
    group starts (5.5 min measured on this loaded 2-core machine, on every fresh cache).
    Only ``inference_all_reduce`` (DeepSpeed-Inference tensor parallelism) uses it; ZeRO
    training all-reduces through torch.distributed, so training runs skip the build."""
    from deepspeed.accelerator import get_accelerator
    if get_accelerator().device_name() == 'cpu':
        deepspeed.ops.__compatible_ops__['deepspeed_shm_comm'] = False


def patch_lvis_numpy2():
    """Called by the detection package before the LVIS metric imports ``lvis``."""
    if 'float' not in np.__dict__:
        np.float = float  # lvis 0.5.3 eval.py


def apply():
    _defer_deepspeed_import()  # first: before anything imports mmengine.runner
    _allow_mmengine_checkpoints()
    _history_buffer_without_functions()
    _resume_with_full_unpickling_fallback()
    _atomic_local_writes()
    _shim_mmaction_drn()
    _cpu_dist_init()
