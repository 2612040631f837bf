"""Fixes for the pinned stack, applied when ``projects.eva`` is imported.

* torch >= 2.6 loads with ``weights_only=True``; mmengine 0.10.7 checkpoints (``--resume``,
  ``load_from``) hold a few mmengine/numpy objects. We allow exactly those types, so resuming
  works and loading still never executes code from a file (mmengine issue 1655).
* The mmaction2 1.2.0 wheel lacks ``mmaction/models/localizers/drn`` which
  ``mmaction.models`` imports: a placeholder module stands in for that one model.
* ``lvis`` 0.5.3 uses ``np.float`` (gone in numpy >= 1.24): :func:`patch_lvis_numpy2`.
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


def patch_lvis_numpy2():
    """Called by the detection package before the LVIS metric imports ``lvis``."""
    if 'float' not in np.__dict__:
        np.float = float  # lvis 0.5.3 eval.py


def apply():
    _allow_mmengine_checkpoints()
    _shim_mmaction_drn()
