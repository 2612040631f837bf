"""MIM pre-training: SIGKILL mid-epoch, then --resume gives the uninterrupted run's losses,
EMA and scheduler state."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

from projects.eva.demo.synthetic import make_unlabeled_images

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_MIM = osp.join(ROOT, 'configs/demo/eva-mim_vit-tiny-p14_1xb32-8e_shapes.py')

def train_cmd(work_dir, data_root, max_epochs, *extra):
    config = osp.join(data_root, 'mim_with_ema.py')  # the demo config plus an EMA hook
    with open(config, 'w') as f:
        f.write(f"_base_ = {DEMO_MIM!r}\n"
                "custom_hooks = [dict(type='EMAHook', momentum=0.1), "
                "dict(type='FiniteLossHook')]\n")
    return [sys.executable, osp.join(ROOT, 'tools/train.py'), config, '--work-dir',
            str(work_dir), *extra, '--cfg-options',
            f'train_dataloader.dataset.dataset.data_root={data_root}',
            'train_dataloader.batch_size=8', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False', f'train_cfg.max_epochs={max_epochs}',
            'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=2',
            'default_hooks.checkpoint.by_epoch=False',
            'default_hooks.checkpoint.max_keep_ckpts=-1', 'randomness.deterministic=True']


def logged_losses(work_dir):
    out = {}
    for run in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, run, 'vis_data', 'scalars.json')
        if osp.isfile(path):
            with open(path) as f:
                for line in f:
                    rec = json.loads(line)
                    if 'loss' in rec:
                        out.setdefault(run, {})[rec['step']] = rec['loss']
    return out


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('rel')
    make_unlabeled_images(str(root / 'train'), num=40, size=112, seed=3)
    return str(root)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path, data_root):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    full, cut = tmp_path / 'full', tmp_path / 'cut'
    subprocess.run(train_cmd(full, data_root, 3), check=True, env=env, cwd=ROOT,
                   capture_output=True)
    proc = subprocess.Popen(train_cmd(cut, data_root, 3), env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    iters_per_epoch = 5  # 40 images / batch 8
    deadline = time.time() + 600
    while time.time() < deadline:  # kill in the middle of epoch 2
        runs = logged_losses(cut) if cut.exists() else {}
        steps = max((max(v) for v in runs.values()), default=0)
        if steps >= iters_per_epoch + 2:
            break
        if proc.poll() is not None:
            pytest.fail('training ended before it could be killed')
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (cut / 'iter_6.pth').exists() and not (cut / 'iter_15.pth').exists()
    assert not [f for f in os.listdir(cut) if '.tmp' in f]  # no half-written file left behind
    res = subprocess.run(train_cmd(cut, data_root, 3, '--resume'), env=env, cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    ref = next(iter(logged_losses(full).values()))
    runs = logged_losses(cut)
    resumed = runs[sorted(runs)[-1]]
    start = min(resumed)
    # resumed from the last (iteration) checkpoint, inside an epoch, with the same next losses
    assert start > iters_per_epoch and (start - 1) % 2 == 0, start
    assert (start - 1) % iters_per_epoch != 0, 'the checkpoint should be mid-epoch'
    assert max(resumed) == 3 * iters_per_epoch
    for step, loss in resumed.items():
        assert loss == pytest.approx(ref[step], abs=1e-6), step
    # EMA and scheduler state came back too: final EMA weights match the uninterrupted run
    a = torch.load(full / 'iter_15.pth', weights_only=True)
    b = torch.load(cut / 'iter_15.pth', weights_only=True)
    for k, v in a['ema_state_dict'].items():
        torch.testing.assert_close(b['ema_state_dict'][k], v, rtol=0, atol=1e-6, msg=k)
    assert a['param_schedulers'] == b['param_schedulers']




@pytest.mark.slow
def test_nan_stops_mim_training(tmp_path, one_thread):
    from reliability_tasks import assert_nan_run_stops_and_saves_nothing_non_finite
    root = tmp_path / 'data'
    make_unlabeled_images(str(root / 'train'), num=8, size=112, seed=3)
    assert_nan_run_stops_and_saves_nothing_non_finite(
        'demo/eva-mim_vit-tiny-p14_1xb32-8e_shapes.py', tmp_path / 'w',
        {'train_dataloader.dataset.dataset.data_root': str(root),
         'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 0,
         'train_dataloader.persistent_workers': False, 'train_cfg.max_epochs': 1}, iters=4)
