"""Mixed precision with a dynamic loss scaler on any device, CPU included.

mmengine 0.10.7's ``AmpOptimWrapper`` asserts a GPU/NPU/MLU and its CPU autocast allows only
bf16, so ``--amp`` (and the fp16 video configs) could not run on CPU, and the loss-scaler
state that ``--resume`` must restore could not be tested there. torch >= 2.3 has
``torch.amp.GradScaler(device)`` and fp16 CPU autocast: this wrapper uses them. It keeps
``AmpOptimWrapper``'s state format (``optimizer`` + ``loss_scaler`` in the checkpoint), so its
checkpoints and mmengine's are interchangeable.
"""
from contextlib import contextmanager
from typing import Optional, Union

import torch
import torch.nn as nn
from mmengine.device import get_device
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AnyDeviceAmpOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` for any torch device (``tools/train.py --amp`` picks it on CPU).

    Args:
        loss_scale: ``'dynamic'``, a float (static scale) or a dict of
            ``torch.amp.GradScaler`` arguments (``init_scale``, ``growth_interval``...).
        dtype: autocast dtype; ``None`` means float16 (what the dynamic scaler is for).
        device: ``'cpu'``/``'cuda'``...; ``None``: mmengine's current device.
    """

    def __init__(self, loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = None, device: Optional[str] = None,
                 use_fsdp: bool = False, **kwargs):
        if use_fsdp:
            raise ValueError('AnyDeviceAmpOptimWrapper has no FSDP scaler: use '
                             'AmpOptimWrapper(use_fsdp=True) on GPUs')
        OptimWrapper.__init__(self, **kwargs)  # skip AmpOptimWrapper's GPU-only assertion
        self.device_type = torch.device(device or get_device()).type
        self._scale_update_param = None
        if loss_scale == 'dynamic':
            self.loss_scaler = torch.amp.GradScaler(self.device_type)
        elif isinstance(loss_scale, (int, float)) and not isinstance(loss_scale, bool):
            self._scale_update_param = float(loss_scale)  # update() keeps it fixed
            self.loss_scaler = torch.amp.GradScaler(self.device_type,
                                                    init_scale=float(loss_scale))
        elif isinstance(loss_scale, dict):
            self.loss_scaler = torch.amp.GradScaler(self.device_type, **loss_scale)
        else:
            raise TypeError(f'loss_scale must be "dynamic", a float or a dict, got '
                            f'{loss_scale!r}')
        if dtype is None:
            dtype = torch.float16
        if isinstance(dtype, str):
            if dtype not in self.valid_dtypes:
                raise ValueError(f'dtype must be one of {self.valid_dtypes}, got {dtype!r}')
            dtype = getattr(torch, dtype)
        self.cast_dtype = dtype

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Gradient-accumulation context of ``OptimWrapper`` + ``torch.autocast`` on the
        wrapper's device (mmengine's ``autocast`` refuses fp16 on CPU)."""
        with OptimWrapper.optim_context(self, model), \
                torch.autocast(device_type=self.device_type, dtype=self.cast_dtype):
            yield
