"""2 CPU processes (torchrun + gloo through tools/dist_train.sh) reproduce the 1-process MIM
demo run at the same global batch: same samples and masks (EpochSeededSampler/Dataset),
DDP-averaged gradients, so the global-batch loss matches iteration by iteration."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from projects.eva.demo.synthetic import make_unlabeled_images

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_MIM = osp.join(ROOT, 'configs/demo/eva-mim_vit-tiny-p14_1xb32-8e_shapes.py')
GLOBAL_BATCH = 16


def write_config(tmp, data_root, batch, out_file):
    path = osp.join(tmp, f'mim_b{batch}.py')
    with open(path, 'w') as f:
        f.write(f"""_base_ = {DEMO_MIM!r}
custom_imports = dict(imports=['projects.eva.pretrain', 'projects.eva.engine',
                               'projects.eva.analysis.hooks'], allow_failed_imports=False)
train_dataloader = dict(batch_size={batch}, num_workers=0, persistent_workers=False,
                        sampler=dict(seed=0),
                        dataset=dict(dataset=dict(data_root={data_root!r})))
train_cfg = dict(max_epochs=2)
# the demo's random-init CLIP teacher draws its biases from the global RNG and is not a
# DDP-synced submodule: with diff_rank_seed each rank would get a different teacher
randomness = dict(seed=0, diff_rank_seed=False)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=1)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=100))
custom_hooks = [dict(type='GlobalLossRecorderHook', out_file={out_file!r})]
""")
    return path


def free_port() -> str:
    """A port nobody listens on now: a fixed one collides with a concurrent or just-ended run."""
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return str(sock.getsockname()[1])


def read_losses(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp('dist'))
    data_root = osp.join(tmp, 'data')
    make_unlabeled_images(osp.join(data_root, 'train'), num=2 * GLOBAL_BATCH, size=112, seed=3)
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1', PORT=free_port(),
               PYTHON=sys.executable)
    single_out, dist_out = osp.join(tmp, 'single.jsonl'), osp.join(tmp, 'dist.jsonl')
    single_cfg = write_config(tmp, data_root, GLOBAL_BATCH, single_out)
    dist_cfg = write_config(tmp, data_root, GLOBAL_BATCH // 2, dist_out)
    env['PYTHONFAULTHANDLER'] = '1'  # a rank that aborts prints where it was

    def dist_run():
        return subprocess.Popen(['bash', osp.join(ROOT, 'tools/dist_train.sh'), dist_cfg, '2',
                                 '--work-dir', osp.join(tmp, 'wd_dist')], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    procs = [
        subprocess.Popen([sys.executable, osp.join(ROOT, 'tools/train.py'), single_cfg,
                          '--work-dir', osp.join(tmp, 'wd_single')], env=env, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        dist_run(),
    ]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    if procs[1].returncode != 0 and 'terminate called without an active exception' in logs[1]:
        # Known, unresolved: in some clean-clone CI runs (2 of 6) a gloo rank aborted at the
        # very end of a complete 2-process CPU run (after the last iteration, while rank 0
        # wrote its checkpoint). Not reproduced in 8 stand-alone repeats. One retry, and the
        # first failure's log is kept beside the run for diagnosis.
        with open(osp.join(tmp, 'first_dist_failure.log'), 'w') as f:
            f.write(logs[1])
        open(dist_out, 'w').close()
        procs[1] = dist_run()
        logs[1] = procs[1].communicate(timeout=600)[0]
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-4000:]
    return read_losses(single_out), read_losses(dist_out), logs[1]


def test_two_processes_match_one_process_loss(runs):
    single, dist, log = runs
    assert 'Distributed training: True' in log, log[-2000:]
    # 32 images / global batch 16 = 2 iterations per epoch, 2 epochs
    assert [r['iter'] for r in single] == [r['iter'] for r in dist] == [0, 1, 2, 3]
    # both runs average over the same masked patches of the same 16 images
    assert [r['weight'] for r in single] == [r['weight'] for r in dist]
    # iteration 0: identical weights and inputs -> the same loss up to float summation order
    assert dist[0]["loss"] == pytest.approx(single[0]["loss"], abs=1e-6)
    # later: DDP averages the two ranks' mean-loss gradients, the 1-process run the global
    # mean, which differ only by the masked-patch count per rank; the losses stay together
    for s, d in zip(single[1:], dist[1:]):
        assert d["loss"] == pytest.approx(s["loss"], abs=5e-4)
    # and training moved the loss (not a frozen model)
    assert abs(single[-1]['loss'] - single[0]['loss']) > 1e-2


@pytest.mark.parametrize('variant,strategy', [('deepspeed-zero1', 'DeepSpeedStrategy'),
                                              ('fsdp', 'FSDPStrategy')])
def test_flexible_runner_variants_of_the_giant_recipe(variant, strategy, tmp_path):
    """The ZeRO-1 / FSDP variants change only the engine; their strategy objects build."""
    import copy

    from mmengine.config import Config
    from mmengine.registry import STRATEGIES
    base_path = osp.join(ROOT, 'configs/pretrain/eva-mim_vit-g-p14_128xb32-150e_merged30m.py')
    base = Config.fromfile(base_path)
    cfg = Config.fromfile(base_path.replace('.py', f'_{variant}.py'))
    assert cfg.runner_type == 'FlexibleRunner' and cfg.strategy.type == strategy
    for key in ('model', 'train_dataloader', 'param_scheduler', 'train_cfg'):
        assert cfg[key] == base[key], key
    assert cfg.optim_wrapper.optimizer == base.optim_wrapper.optimizer
    assert cfg.optim_wrapper.paramwise_cfg == base.optim_wrapper.paramwise_cfg
    if strategy == 'DeepSpeedStrategy':
        pytest.importorskip('deepspeed')
        s = STRATEGIES.build(dict(copy.deepcopy(cfg.strategy), work_dir=str(tmp_path)))
        # EVA-01's DeepSpeed settings (utils.create_ds_config)
        assert s.config['zero_optimization']['stage'] == 1
        assert s.config['fp16'] == dict(enabled=True, auto_cast=False, loss_scale=0,
                                        initial_scale_power=16, loss_scale_window=500,
                                        hysteresis=2, min_loss_scale=1)
        assert s.config['gradient_clipping'] == 3.0
        assert cfg.optim_wrapper.type == 'DeepSpeedOptimWrapper'
    else:
        s = STRATEGIES.build(dict(copy.deepcopy(cfg.strategy), work_dir=str(tmp_path)))
        assert cfg.optim_wrapper.use_fsdp and cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert type(s).__name__ == strategy
