"""Evaluate the freshly initialised model before training starts.

The demo reports "mIoU before training -> after training" from one run: the first logged
validation is the untrained baseline, on the same held-out split and metric.
"""
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class ValBeforeTrainHook(Hook):
    priority = 'LOWEST'

    def before_train(self, runner):
        if runner.val_loop is None or runner.iter > 0:  # nothing to run, or resuming
            return
        runner.val_loop.run()
