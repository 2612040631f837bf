"""Fault injection shared by the per-task reliability modules (test_reliability_<task>.py)."""
import glob
import os.path as osp

import pytest
import torch

from projects.eva.demo.utils import config_path
from projects.eva.runner import build_runner


def runner_for(config, work_dir, options, mode='train', checkpoint=None, amp=False, tta=False):
    """The Runner tools/train.py (mode='train') or tools/test.py (mode='test') builds."""
    return build_runner(config_path(config), str(work_dir), amp=amp,
                        cfg_options=dict(options), mode=mode, no_validate=True,
                        pin_memory=False, checkpoint=checkpoint, tta=tta)


def assert_nan_run_stops_and_saves_nothing_non_finite(config, work_dir, options, iters):
    """The issue's recipe, ``optim_wrapper.optimizer.lr=1e10``, with a checkpoint after every
    iteration and max_keep_ckpts=1: training must stop with FloatingPointError (before it
    ran every iteration), every checkpoint left on disk must hold finite tensors only, and
    ``last_checkpoint`` (if any) must name one of them."""
    options = dict(options)
    options.update({'optim_wrapper.optimizer.lr': 1e10,
                    'default_hooks.checkpoint.interval': 1,
                    'default_hooks.checkpoint.by_epoch': False,
                    'default_hooks.checkpoint.max_keep_ckpts': 1,
                    'default_hooks.logger.interval': 1})
    runner = runner_for(config, work_dir, options)
    with pytest.raises(FloatingPointError, match='non-finite'):
        runner.train()
    assert runner.iter < iters, 'the run went through every iteration'
    saved = sorted(glob.glob(osp.join(str(work_dir), '*.pth')))
    for path in saved:
        sd = torch.load(path, map_location='cpu', weights_only=True)['state_dict']
        bad = [k for k, v in sd.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        assert not bad, (path, bad[:5])
    pointer = osp.join(str(work_dir), 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            assert f.read().strip() in saved
    return runner
