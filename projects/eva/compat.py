"""Fixes for bugs of the pinned stack (requirements/runtime.txt), all applied by :func:`apply`
-- the one place they happen. Importing ``projects.eva`` (or any of its packages) patches
nothing: ``tools/*.py`` and :func:`projects.eva.runner.build_runner` call :func:`apply`. Each
names the upstream bug it works around; ``tests/test_compat.py`` has a test per fix that fails
without it. Drop a fix when the pin moves past its bug.

* :func:`weights_only_resume` -- mmengine#1655: torch >= 2.6 loads with ``weights_only=True``
  and mmengine 0.10.7 checkpoints hold ``HistoryBuffer`` (with function references),
  ``ConfigDict`` and numpy objects, so ``--resume`` fails.
* :func:`safe_checkpoint_loading` -- mmengine 0.10.7 ``runner/checkpoint.py``
  ``load_from_local`` calls ``torch.load`` with torch's default (full unpickling before
  torch 2.6; mmengine#1655 asks for ``weights_only``) and gives a bare ``EOFError`` /
  ``UnicodeDecodeError`` for an empty or non-checkpoint file.
* :func:`atomic_local_writes` -- mmengine 0.10.7 ``LocalBackend.put`` opens the final path
  with ``'wb'`` and writes in place: a crash mid-save leaves a truncated checkpoint under the
  name ``--resume`` picks.
* :func:`mmaction_drn` -- mmaction2#2714: the 1.2.0 wheel lacks
  ``mmaction/models/localizers/drn``, which ``mmaction.models`` imports.
* :func:`lvis_numpy2` -- lvis-api#37 (fixed on its main branch, never released): lvis 0.5.3
  ``eval.py`` uses ``np.float``, removed in numpy 1.24.
* :func:`cpu_dist_init` -- mmengine 0.10.7 ``dist.utils._init_dist_pytorch`` calls
  ``torch.cuda.set_device`` even for gloo: ``tools/dist_train.sh`` dies without CUDA; the same
  for ``init_backend='deepspeed'`` (DeepSpeedStrategy on ``DS_ACCELERATOR=cpu``).
* :func:`deferred_deepspeed_import` -- mmengine 0.10.7 ``_strategy/deepspeed.py`` runs
  ``import deepspeed`` at import time, i.e. with every ``import mmengine.runner`` (seconds per
  process, with or without a DeepSpeed config); deepspeed 0.16.9's CPU backend JIT-compiles
  an inference-only all-reduce op when its process group starts (minutes on a fresh cache).
* :func:`named_image_errors` -- mmcv 2.1 ``LoadImageFromFile`` on a zero-byte file fails in
  OpenCV with ``cv2.error ... !buf.empty()`` and no file name.
* :func:`mmcv_cpu_amp` -- mmcv 2.1's CPU kernels of ``nms`` / ``RoIAlign`` take fp32 only:
  ``--amp`` without CUDA failed with ``expected scalar type Float but found Half``.
"""
import functools
import importlib.util
import os.path as osp
import sys
import types

import numpy as np
import torch


def weights_only_resume():
    """Checkpoints written by our runs load with ``torch.load(weights_only=True)``: the few
    mmengine / numpy data types they hold are allow-listed
    (:func:`projects.eva.loader.runner_globals`) and ``HistoryBuffer`` stops pickling function
    references (its default statistics are rebuilt on load anyway). There is no fallback to
    full unpickling: a checkpoint of another run that needs it is refused by name, unless the
    user opts in (``EVA_TRUST_CHECKPOINTS=1``, see :mod:`projects.eva.loader`)."""
    from mmengine.logging import HistoryBuffer

    from .loader import runner_globals
    torch.serialization.add_safe_globals(runner_globals())
    if not getattr(HistoryBuffer, '_eva_safe_pickle', False):
        def __getstate__(self):
            state = dict(self.__dict__)
            state.pop('statistics_methods', None)  # functions: defaults restored on load
            return state

        HistoryBuffer.__getstate__ = __getstate__
        HistoryBuffer._eva_safe_pickle = True


def safe_checkpoint_loading():
    """mmengine's ``CheckpointLoader`` reads local files through the one loader
    (:func:`projects.eva.loader.read_checkpoint`), so ``load_from``, ``--resume``,
    ``init_cfg=Pretrained`` and ``load_checkpoint`` never unpickle code and name bad files."""
    from mmengine.runner.checkpoint import CheckpointLoader

    from .loader import load_from_local_safely
    if CheckpointLoader._schemes.get('') is not load_from_local_safely:
        # local files, and URLs (downloaded once into torch's hub cache, then read the same way)
        CheckpointLoader.register_scheme(prefixes=('', 'http://', 'https://'),
                                         loader=load_from_local_safely, force=True)


def atomic_local_writes():
    """mmengine writes checkpoints with ``LocalBackend.put``: write a temporary file in the
    same folder, fsync, then ``os.replace`` it, so a crash while saving never leaves a
    truncated checkpoint under the final name."""
    from mmengine.fileio.backends import LocalBackend
    if getattr(LocalBackend, '_eva_atomic', False):
        return
    from .engine.checkpoint import write_atomically

    def put(self, obj: bytes, filepath) -> None:
        write_atomically(str(filepath), obj)

    LocalBackend.put = put
    LocalBackend._eva_atomic = True


def named_image_errors():
    """Empty / undecodable image files are named (:func:`projects.eva.engine.inputs.apply`)."""
    if importlib.util.find_spec('mmcv') is None:
        return
    from .engine import inputs
    inputs.apply()


def mmcv_cpu_amp():
    """fp16 / bf16 inputs of mmcv's CPU ``nms`` / ``RoIAlign`` are upcast
    (:func:`projects.eva.detection.cpu_amp.apply`)."""
    if importlib.util.find_spec('mmcv') is None:
        return
    from .detection import cpu_amp
    cpu_amp.apply()


def mmaction_drn():
    """A placeholder ``mmaction.models.localizers.drn`` whose ``DRN`` says why it is absent."""
    name = 'mmaction.models.localizers.drn.drn'
    spec = importlib.util.find_spec('mmaction')
    if name in sys.modules or spec is None or osp.isdir(
            osp.join(spec.submodule_search_locations[0], 'models', 'localizers', 'drn')):
        return  # done, no mmaction2, or a fixed wheel that ships the real module
    pkg = types.ModuleType('mmaction.models.localizers.drn')
    pkg.__path__ = []
    mod = types.ModuleType(name)

    class DRN:
        """Placeholder: the mmaction2 1.2.0 wheel does not ship DRN."""

        def __init__(self, *args, **kwargs):
            raise ImportError('DRN is missing from the mmaction2 1.2.0 wheel '
                              '(mmaction/models/localizers/drn, mmaction2#2714); EVA does '
                              'not use it')

    mod.DRN = DRN
    pkg.drn = mod
    sys.modules[pkg.__name__] = pkg
    sys.modules[name] = mod


def lvis_numpy2():
    """``np.float`` as the builtin ``float`` it aliased (what lvis-api's own fix uses)."""
    if 'float' not in np.__dict__:
        np.float = float


def cpu_dist_init():
    """Without CUDA, initialise the process group without ``torch.cuda.set_device``."""
    from mmengine.dist import utils
    if getattr(utils._init_dist_pytorch, '_eva_cpu', False):
        return
    original = utils._init_dist_pytorch

    def init(backend='nccl', init_backend='torch', **kwargs):
        if torch.cuda.is_available() or init_backend not in ('torch', 'deepspeed'):
            return original(backend, init_backend=init_backend, **kwargs)
        if init_backend == 'deepspeed':
            import deepspeed
            deepspeed.init_distributed(dist_backend=backend, **kwargs)
        else:
            torch.distributed.init_process_group(backend=backend, **kwargs)

    init._eva_cpu = True
    utils._init_dist_pytorch = init


def deferred_deepspeed_import():
    """Import ``mmengine._strategy`` with ``deepspeed`` hidden, and hand its module the real
    ``deepspeed`` when a ``DeepSpeedStrategy`` is constructed (its ``__init__`` asserts the
    module-level name; ``_wrap_model`` and checkpointing use it). Must run before anything
    imports ``mmengine.runner``. On CPU, DeepSpeed's shared-memory all-reduce op is marked
    unavailable: only ``inference_all_reduce`` (DeepSpeed-Inference tensor parallelism) uses
    it, ZeRO training all-reduces through torch.distributed, and its JIT build took 5.5 min
    on this loaded 2-core machine."""
    import importlib
    if 'mmengine._strategy' in sys.modules:  # imported before us (with deepspeed, if present)
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

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        if module.deepspeed is None and importlib.util.find_spec('deepspeed') is not None:
            module.deepspeed = importlib.import_module('deepspeed')
            from deepspeed.accelerator import get_accelerator
            if get_accelerator().device_name() == 'cpu':
                module.deepspeed.ops.__compatible_ops__['deepspeed_shm_comm'] = False
        original(self, *args, **kwargs)

    __init__._eva_lazy = True
    module.DeepSpeedStrategy.__init__ = __init__


# deferred_deepspeed_import first: the others import mmengine.runner
FIXES = (deferred_deepspeed_import, weights_only_resume, safe_checkpoint_loading,
         atomic_local_writes, mmaction_drn, lvis_numpy2, cpu_dist_init, named_image_errors,
         mmcv_cpu_amp)


CONFIG_ROOT = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs')


def config_root():
    """Not a fix: ``configs/custom/*.py`` name their bases as
    ``'{{$EVA_CONFIGS:..}}/<task>/<base>.py'`` (mmengine's environment-variable substitution,
    default relative to ``configs/custom/``), so a copy of one anywhere finds its bases when
    ``EVA_CONFIGS`` names this repository's ``configs/``; the tools set that default (a value
    the user exported wins)."""
    import os
    os.environ.setdefault('EVA_CONFIGS', CONFIG_ROOT)


def apply():
    """Apply every fix (idempotent), and :func:`config_root`. Called explicitly by
    ``tools/*.py`` and by :func:`projects.eva.runner.build_runner`; importing ``projects.eva``
    patches nothing."""
    for fix in FIXES:
        fix()
    config_root()
