"""Hooks for the 2-process tests (imported by the ranks through ``custom_imports``; the
tests put this folder on ``PYTHONPATH``). Registered under test-only names."""
import json
import os
import signal

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class _TestKillAtIterHook(Hook):
    """SIGKILL every rank before iteration ``at`` (as a preempted job dies: no cleanup)."""

    def __init__(self, at: int):
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class _TestDumpParamGroupsHook(Hook):
    """Rank 0 writes the optimizer's param groups (name, layer id, lr) after iteration 0,
    i.e. what the strategy's optimizer actually steps with."""

    def __init__(self, out_file: str):
        self.out_file = out_file

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter != 0 or get_rank() != 0:
            return
        optimizer = runner.optim_wrapper.optimizer
        groups = [dict(name=g.get('param_name'), layer_id=g.get('layer_id'), lr=g['lr'],
                       lr_scale=g.get('lr_scale'), weight_decay=g['weight_decay'])
                  for g in optimizer.param_groups]
        with open(self.out_file, 'w') as f:
            json.dump(dict(optimizer=type(optimizer).__name__, groups=groups), f)
