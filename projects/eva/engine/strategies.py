"""FSDP2 (``torch.distributed.fsdp.fully_shard``) for mmengine's ``FlexibleRunner``.

mmengine 0.10.7's ``FSDPStrategy`` wraps the model in FSDP1's ``FullyShardedDataParallel``
with ``device_id=LOCAL_RANK`` (a CUDA device: it cannot run on CPU/gloo) and keeps FSDP1's
flat-parameter state-dict API. PyTorch's FSDP2 shards each parameter as a ``DTensor``
in place, runs on CPU with gloo as on GPUs with NCCL, keeps parameter names (so
``paramwise_cfg`` and EVA's layer-decay groups apply unchanged) and composes with the
non-reentrant activation checkpointing of ``EVAViT(with_cp=True)``.

Checkpoints are *full* state dicts (gathered on every rank, written by rank 0), the same
layout as a DDP run's: they load without FSDP (``tools/test.py``, fine-tuning, converters)
and resume on any world size.
"""
import os.path as osp
import time
from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.device import get_device
from mmengine.dist import get_world_size, is_main_process
from mmengine.model import BaseDataPreprocessor, is_model_wrapper
from mmengine.registry import STRATEGIES

from mmengine._strategy import DDPStrategy

_DTYPES = {'float32': torch.float32, 'float16': torch.float16, 'bfloat16': torch.bfloat16,
           None: None}


@STRATEGIES.register_module()
class EVAFullyShardStrategy(DDPStrategy):
    """Shard parameters, gradients and optimizer states over all ranks with FSDP2.

    Args:
        shard_modules (Sequence[str]): class names of the submodules that become their own
            FSDP unit (all-gathered just before their forward, freed after), e.g. EVAViT's
            ``'Block'``; the root module holds every other parameter (embeddings, head,
            frozen teacher). At least one module of each listed name must exist.
        reshard_after_forward (bool): free the gathered parameters after each unit's forward
            (ZeRO-3-like, the memory saving); False keeps them until backward (ZeRO-2-like).
        param_dtype / reduce_dtype (str, optional): FSDP2 ``MixedPrecisionPolicy``: dtype of
            the gathered compute parameters and of the gradient reduction. None: fp32.
        **kwargs: :class:`mmengine._strategy.DDPStrategy` arguments (work_dir, ...).
    """

    def __init__(self, *, shard_modules: Sequence[str] = ('Block', ),
                 reshard_after_forward: bool = True, param_dtype: Optional[str] = None,
                 reduce_dtype: Optional[str] = None, **kwargs):
        if kwargs.get('model_wrapper') is not None:
            raise ValueError('EVAFullyShardStrategy: `model_wrapper` does not apply to FSDP2 '
                             '(fully_shard shards the model in place); remove it')
        for name, value in (('param_dtype', param_dtype), ('reduce_dtype', reduce_dtype)):
            if value not in _DTYPES:
                raise ValueError(f'EVAFullyShardStrategy: {name}={value!r}, expected one of '
                                 f'{[k for k in _DTYPES if k]}')
        super().__init__(**kwargs)
        self.shard_modules = tuple(shard_modules)
        self.reshard_after_forward = reshard_after_forward
        self.param_dtype, self.reduce_dtype = param_dtype, reduce_dtype

    # ------------------------------------------------------------------ sharding
    def _wrap_model(self, model: nn.Module) -> nn.Module:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
        if is_model_wrapper(model):
            raise TypeError('EVAFullyShardStrategy expects a plain model, got the wrapper '
                            f'{type(model).__name__}')
        device = get_device()
        model = model.to(device)
        for module in model.modules():
            if isinstance(module, BaseDataPreprocessor):
                module.to(device)
        mesh = init_device_mesh(torch.device(device).type, (get_world_size(), ))
        kwargs = dict(mesh=mesh, reshard_after_forward=self.reshard_after_forward)
        if self.param_dtype or self.reduce_dtype:
            kwargs['mp_policy'] = MixedPrecisionPolicy(
                param_dtype=_DTYPES[self.param_dtype], reduce_dtype=_DTYPES[self.reduce_dtype])
        units = [m for m in model.modules() if type(m).__name__ in self.shard_modules]
        found = {type(m).__name__ for m in units}
        missing = [name for name in self.shard_modules if name not in found]
        if missing:
            raise ValueError(f'EVAFullyShardStrategy: shard_modules {missing} match no '
                             f'submodule of {type(model).__name__}')
        for module in units:
            fully_shard(module, **kwargs)
        fully_shard(model, **kwargs)
        return model

    # ------------------------------------------------------------------ state dicts
    def _options(self, **kwargs):
        from torch.distributed.checkpoint.state_dict import StateDictOptions
        return StateDictOptions(full_state_dict=True, **kwargs)

    def model_state_dict(self) -> dict:
        """The unsharded state dict (collective: every rank must call it)."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict
        return get_model_state_dict(self.model, options=self._options(cpu_offload=True))

    def optim_state_dict(self) -> dict:
        """The unsharded optimizer state, keyed by parameter name (collective), plus the
        wrapper's own entries (``base_param_settings``: the scheduled base lr mmengine logs;
        ``loss_scaler`` of an AMP wrapper)."""
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict
        state = {k: v for k, v in self.optim_wrapper.state_dict().items()
                 if k not in ('state', 'param_groups')}
        state.update(get_optimizer_state_dict(self.model, self.optim_wrapper.optimizer,
                                              options=self._options(cpu_offload=True)))
        return state

    def load_model_state_dict(self, state_dict: dict, *, strict: bool = False,
                              revise_keys: list = [(r'^module.', '')]) -> None:
        """Every rank holds the full state dict (it read the checkpoint) and keeps its shard.
        A plain model's load path is used for the key revision and missing-key report."""
        import re
        from collections import OrderedDict

        from torch.distributed.checkpoint.state_dict import set_model_state_dict
        for pattern, repl in revise_keys:
            state_dict = OrderedDict((re.sub(pattern, repl, k), v) for k, v in state_dict.items())
        expected = set(self.model.state_dict())
        missing = sorted(expected - set(state_dict))
        unexpected = sorted(set(state_dict) - expected)
        if strict and (missing or unexpected):
            raise KeyError(f'checkpoint does not match the model: missing {missing[:5]}, '
                           f'unexpected {unexpected[:5]}')
        if missing or unexpected:
            self.logger.warning(f'load_state_dict: missing keys {missing[:10]}, '
                                f'unexpected keys {unexpected[:10]}')
        state_dict = {k: v for k, v in state_dict.items() if k in expected}
        set_model_state_dict(self.model, state_dict, options=self._options(strict=False))

    def load_optim_state_dict(self, state_dict: dict) -> None:
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict
        state_dict = dict(state_dict)
        base = state_dict.pop('base_param_settings', None)
        if base is not None:
            self.optim_wrapper.base_param_settings = base
        scaler = state_dict.pop('loss_scaler', None)
        if scaler is not None:
            self.optim_wrapper.loss_scaler.load_state_dict(scaler)
        set_optimizer_state_dict(self.model, self.optim_wrapper.optimizer, state_dict,
                                 options=self._options())

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, filename: str, *, save_optimizer: bool = True,
                        save_param_scheduler: bool = True, extra_ckpt: Optional[dict] = None,
                        callback: Optional[Callable] = None) -> None:
        """Gather on every rank (the all-gathers are collective; DDPStrategy's rank-0-only
        save would hang), write on rank 0 only."""
        import mmengine
        from mmengine.runner.checkpoint import save_checkpoint
        from mmengine.utils import get_git_hash
        checkpoint = dict(state_dict=self.model_state_dict())
        if save_optimizer and hasattr(self, 'optim_wrapper'):
            checkpoint['optimizer'] = self.optim_state_dict()
        if save_param_scheduler and hasattr(self, 'param_schedulers'):
            checkpoint['param_schedulers'] = self.scheduler_state_dict()
        extra_ckpt = dict(extra_ckpt or {})
        extra_ckpt.setdefault('meta', {}).update(
            seed=self.seed, time=time.strftime('%Y%m%d_%H%M%S', time.localtime()),
            mmengine=mmengine.__version__ + get_git_hash())
        checkpoint.update(extra_ckpt)
        if callback is not None:
            callback(checkpoint)
        if is_main_process():
            save_checkpoint(checkpoint, filename)

    def load_checkpoint(self, filename: str, *, map_location: Union[str, Callable] = 'cpu',
                        **kwargs) -> dict:
        if osp.isdir(filename):
            raise IsADirectoryError(f'{filename}: a sharded (directory) checkpoint; '
                                    'EVAFullyShardStrategy reads full-state .pth files')
        # the full tensors stay on CPU until each rank takes its shard
        if map_location == 'default':
            map_location = 'cpu'
        return super().load_checkpoint(filename, map_location=map_location, **kwargs)
