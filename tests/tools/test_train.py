"""Short MIM training runs through the real Runner: the loss falls, and --resume continues
at the right iteration with the same next losses."""
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from projects.eva.demo.synthetic import make_unlabeled_images
from projects.eva.runner import build_runner

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_MIM = osp.join(ROOT, 'configs/demo/eva-mim_vit-tiny-p14_1xb32-8e_shapes.py')
RECORDED = {}


@HOOKS.register_module(force=True)
class _RecordLossHook(Hook):
    """Keeps every iteration's exact loss (logs are averaged and rounded)."""

    def __init__(self, key):
        self.key = key

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        RECORDED.setdefault(self.key, []).append((runner.iter, outputs['loss'].item()))


@pytest.fixture(scope='module')
def mim_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('mim')
    make_unlabeled_images(str(root / 'train'), num=96, size=112, seed=1)
    return str(root)


def run(work_dir, data_root, key, max_epochs, resume=None, extra=None):
    options = {
        'train_dataloader.dataset.dataset.data_root': data_root,
        'train_dataloader.batch_size': 16,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_cfg.max_epochs': max_epochs,
        'default_hooks.checkpoint.interval': 1,
        'default_hooks.checkpoint.max_keep_ckpts': -1,
        'randomness.deterministic': True,
        'custom_hooks': [dict(type='_RecordLossHook', key=key)],
    }
    options.update(extra or {})
    runner = build_runner(DEMO_MIM, str(work_dir), resume=resume, cfg_options=options,
                          pin_memory=False, persistent_workers=False)
    runner.train()
    return runner


@pytest.mark.slow
def test_short_mim_training_loss_decreases(tmp_path, mim_data):
    run(tmp_path, mim_data, 'learn', max_epochs=4, extra={'param_scheduler.0.end': 1})
    losses = [loss for _, loss in RECORDED['learn']]
    assert len(losses) == 4 * 6
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < first - 0.1, (first, last)


@pytest.mark.slow
def test_resume_continues_with_same_next_losses(tmp_path, mim_data):
    run(tmp_path / 'full', mim_data, 'full', max_epochs=3)
    run(tmp_path / 'cut', mim_data, 'cut', max_epochs=2)
    runner = run(tmp_path / 'cut', mim_data, 'resumed', max_epochs=3,
                 resume=str(tmp_path / 'cut' / 'epoch_2.pth'))
    full, resumed = dict(RECORDED['full']), RECORDED['resumed']
    iters_per_epoch = 6
    assert [i for i, _ in resumed] == list(range(2 * iters_per_epoch, 3 * iters_per_epoch))
    for it, loss in resumed:
        assert loss == pytest.approx(full[it], abs=1e-6), it
    assert runner.iter == 3 * iters_per_epoch
    # our checkpoints are plain weights + allow-listed types: no code runs when loading them
    ckpt = torch.load(str(tmp_path / 'cut' / 'epoch_2.pth'), weights_only=True)
    assert {'state_dict', 'optimizer', 'message_hub', 'param_schedulers'} <= set(ckpt)


@pytest.mark.parametrize('script,args,tool', [
    ('slurm_train.sh', ['part', 'eva', 'configs/x.py', '--amp'], 'tools/train.py'),
    ('slurm_test.sh', ['part', 'eva', 'configs/x.py', 'ckpt.pth', '--tta'], 'tools/test.py'),
])
def test_slurm_scripts_call_srun_with_one_task_per_gpu(tmp_path, script, args, tool):
    """The Slurm wrappers (OpenMMLab convention) hand srun one task per GPU and the tool the
    slurm launcher; a fake srun records what it was given (no cluster here)."""
    import os
    import subprocess
    fake = tmp_path / 'srun'
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$SRUN_LOG"\necho "$MASTER_PORT" >> "$SRUN_LOG"\n')
    fake.chmod(0o755)
    log = tmp_path / 'srun.log'
    env = dict(os.environ, PATH=f'{tmp_path}:{os.environ["PATH"]}', SRUN_LOG=str(log),
               GPUS='16', SRUN_ARGS='--quotatype=auto', PORT='29999')
    subprocess.run(['bash', osp.join(ROOT, 'tools', script)] + args, env=env, check=True)
    got = log.read_text().split('\n')[:-1]
    assert got[:8] == ['-p', 'part', '--job-name=eva', '--gres=gpu:8', '--ntasks=16',
                       '--ntasks-per-node=8', '--cpus-per-task=5', '--kill-on-bad-exit=1']
    assert got[8] == '--quotatype=auto' and got[10:12] == ['-u', osp.join(ROOT, tool)]
    assert got[12:-1] == args[2:-1] + ['--launcher', 'slurm', args[-1]]
    assert got[-1] == '29999'


def test_train_and_test_tools_pass_their_flags_to_build_runner(monkeypatch):
    """tools/train.py and tools/test.py hand each flag to ``build_runner``'s keyword of the
    same meaning (tests call ``build_runner`` directly, without an argparse namespace)."""
    import importlib.util
    calls = []

    import logging
    import torch
    monkeypatch.setattr(torch, 'set_num_threads', lambda n: None)  # --threads: not here

    class FakeRunner:
        cfg = {}  # the tools read the dataloaders' num_workers for --threads
        logger = logging.getLogger('fake_runner')

        def train(self):
            calls.append('train')

        test = train

    def load(name):
        spec = importlib.util.spec_from_file_location(f'_eva_{name}', osp.join(ROOT, 'tools',
                                                                                f'{name}.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        monkeypatch.setattr(module, 'build_runner',
                            lambda *a, **kw: calls.append((a, kw)) or FakeRunner())
        return module

    load('train').main(['c.py', '--work-dir', 'w', '--resume', '--amp', '--no-validate',
                        '--no-pin-memory', '--cfg-options', 'a.b=1'])
    args, kwargs = calls[0]
    assert args == ('c.py',) and kwargs == dict(
        work_dir='w', resume='auto', amp=True, cfg_options={'a.b': 1}, launcher='none',
        no_validate=True, auto_scale_lr=False, pin_memory=False, persistent_workers=True,
        tensorboard=False)
    calls.clear()
    load('test').main(['c.py', 'x.pth', '--tta', '--out', 'r.pkl'])
    args, kwargs = calls[0]
    assert args == ('c.py',) and kwargs == dict(
        work_dir=None, amp=False, cfg_options={}, mode='test', launcher='none',
        checkpoint='x.pth', tta=True, out='r.pkl', tensorboard=False)
