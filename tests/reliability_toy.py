"""A toy model and dataset for the reliability tests, importable by a training subprocess.

``tools/train.py`` imports this module through the config's ``custom_imports`` (the test puts
``tests/`` on ``PYTHONPATH``). With ``EVA_TEST_HANG_SAVE=iter_3.pth`` in the environment the
process hangs inside the write of that checkpoint -- after its bytes reached the temporary
file, before the rename -- and touches ``$EVA_TEST_HANG_SAVE_MARKER``, so a test can kill it
there with SIGKILL: a crash during the save, for real.
"""
import os
import time

import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.evaluator import BaseMetric
from mmengine.registry import DATASETS, METRICS, MODELS
from torch.utils.data import Dataset


@MODELS.register_module(force=True)
class _ToyModel(BaseModel):
    """8 -> 8 linear map fitted to a fixed permutation of its input (fp16 under autocast)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, inputs, data_samples=None, mode='loss'):
        x = torch.stack(inputs)
        loss = (self.fc(x).float() - x.flip(-1)).pow(2).mean()
        if mode == 'loss':
            return dict(loss=loss)
        return [dict(loss=loss.detach())]


@DATASETS.register_module(force=True)
class _ToyData(Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, idx):
        g = torch.Generator().manual_seed(idx)
        return dict(inputs=torch.randn(8, generator=g))


@METRICS.register_module(force=True)
class _ToyCountMetric(BaseMetric):
    """``score``: how many evaluations this process has run, so every validation is a new
    best (``save_best='score'``) whatever the weights, also after an in-process resume."""
    count = 0

    def process(self, data_batch, data_samples):
        self.results.append(0)

    def compute_metrics(self, results):
        type(self).count += 1
        return dict(score=float(type(self).count))


VALIDATION = (
    "val_dataloader = dict(batch_size=4, num_workers=0, collate_fn=dict(type='pseudo_collate'),"
    " sampler=dict(type='DefaultSampler', shuffle=False), dataset=dict(type='_ToyData'))\n"
    "val_cfg = dict()\nval_evaluator = dict(type='_ToyCountMetric')\n")


def toy_config(path, max_iters=12, interval=4, max_keep=-1, amp=False, extra=''):
    """Write an iteration-based toy training config to ``path`` and return it."""
    with open(path, 'w') as f:
        f.write(
            "model = dict(type='_ToyModel')\n"
            "train_dataloader = dict(batch_size=4, num_workers=0, collate_fn=dict("
            "type='pseudo_collate'), sampler=dict(type='InfiniteSampler', shuffle=True),"
            " dataset=dict(type='_ToyData'))\n"
            f"train_cfg = dict(type='IterBasedTrainLoop', max_iters={max_iters})\n"
            "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))\n"
            "param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False,"
            " begin=0, end=4), dict(type='CosineAnnealingLR', by_epoch=False, begin=4,"
            f" end={max_iters}, T_max={max_iters - 4})]\n"
            f"default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval={interval},"
            f" by_epoch=False, max_keep_ckpts={max_keep}),"
            " logger=dict(type='LoggerHook', interval=1))\n"
            "randomness = dict(seed=0, deterministic=True)\n"
            "custom_imports = dict(imports=['reliability_toy', 'projects.eva.engine'],"
            " allow_failed_imports=False)\n" + extra)
    return str(path)


def _hang_in_save():
    target = os.environ.get('EVA_TEST_HANG_SAVE')
    if not target or getattr(os.fsync, '_eva_test', False):
        return
    fsync = os.fsync

    def hanging_fsync(fd):
        name = os.path.basename(os.readlink(f'/proc/self/fd/{fd}'))
        if name.startswith(target + '.tmp'):
            with open(os.environ['EVA_TEST_HANG_SAVE_MARKER'], 'w') as f:
                f.write(name)
            time.sleep(600)  # the test kills us here
        return fsync(fd)

    hanging_fsync._eva_test = True
    os.fsync = hanging_fsync


_hang_in_save()
