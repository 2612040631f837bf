"""2 CPU processes (torchrun + gloo through tools/dist_train.sh).

* DDP reproduces the 1-process MIM demo run at the same global batch: same samples and
  masks (EpochSeededSampler/Dataset), DDP-averaged gradients.
* DeepSpeed ZeRO-1 and FSDP2 (the giant recipe's engine sections, fp32) give the DDP run's
  losses for 20 iterations; each run is SIGKILLed after its iteration-10 checkpoint and
  resumed with ``--resume``, and continues on the uninterrupted DDP run's losses.
* The classification fine-tune keeps its layer-decay lrs under DeepSpeed.

The trainings (``slow``) share one module fixture; the launches of a phase run concurrently.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from projects.eva.demo.synthetic import make_digits_folders, make_unlabeled_images

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs/demo')
DEMO_MIM = osp.join(DEMO, 'eva-mim_vit-tiny-p14_1xb32-8e_shapes.py')
DEMO_DS = osp.join(DEMO, 'eva-mim_vit-tiny-p14_2xb16-8e_shapes_deepspeed-zero1.py')
DEMO_FSDP = osp.join(DEMO, 'eva-mim_vit-tiny-p14_2xb16-8e_shapes_fsdp.py')
DEMO_CLS_DS = osp.join(DEMO, 'eva-cls_vit-tiny-p14_2xb32-80e_digits_deepspeed-zero1.py')
GLOBAL_BATCH = 16
ITERS_PER_EPOCH = 2  # 32 images / global batch 16
EPOCHS = 10          # 20 iterations
CKPT_EPOCH = 5       # checkpoint after iteration 10; the killed runs die before iteration 12
KILL_AT = 12


def write_config(tmp, name, base, data_root, batch, out_file, epochs, kill=False, extra=''):
    path = osp.join(tmp, f'{name}.py')
    with open(path, 'w') as f:
        f.write(f"""_base_ = {base!r}
custom_imports = dict(imports=['projects.eva.pretrain', 'projects.eva.engine',
                               'projects.eva.analysis.hooks', 'dist_helpers'],
                      allow_failed_imports=False)
train_dataloader = dict(batch_size={batch}, num_workers=0, persistent_workers=False,
                        sampler=dict(seed=0),
                        dataset=dict(dataset=dict(data_root={data_root!r})))
train_cfg = dict(max_epochs={epochs})
# the demo's random-init CLIP teacher draws its biases from the global RNG and is not a
# DDP-synced submodule: with diff_rank_seed each rank would get a different teacher
randomness = dict(seed=0, diff_rank_seed=False)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=1)]
# at the demo's lr (2e-3) the run is chaotic: engines that differ only in float summation
# order (1e-8 at first) drift apart to 1e-2 by iteration 8 (measured: DS and FSDP alike)
optim_wrapper = dict(optimizer=dict(lr=2e-4))
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval={CKPT_EPOCH}, max_keep_ckpts=-1))
custom_hooks = [dict(type='GlobalLossRecorderHook', out_file={out_file!r})] + (
    [dict(type='_TestKillAtIterHook', at={KILL_AT})] if {kill} else [])
{extra}""")
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


def launch(config, work_dir, nproc=2, extra=()):
    env = dict(os.environ, PYTHONPATH=f'{ROOT}:{osp.join(ROOT, "tests")}',
               OMP_NUM_THREADS='1', PORT=free_port(), PYTHON=sys.executable,
               DS_ACCELERATOR='cpu', PYTHONFAULTHANDLER='1')
    if nproc == 1:
        cmd = [sys.executable, osp.join(ROOT, 'tools/train.py'), config]
    else:
        cmd = ['bash', osp.join(ROOT, 'tools/dist_train.sh'), config, str(nproc)]
    return subprocess.Popen(cmd + ['--work-dir', work_dir, *extra], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(procs):
    logs = {name: p.communicate(timeout=900)[0] for name, p in procs.items()}
    return {name: (procs[name].returncode, log) for name, log in logs.items()}


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp('dist'))
    data_root = osp.join(tmp, 'data')
    make_unlabeled_images(osp.join(data_root, 'train'), num=ITERS_PER_EPOCH * GLOBAL_BATCH,
                          size=112, seed=3)
    cls_root = make_digits_folders(osp.join(tmp, 'digits'), size=56)
    out = {k: osp.join(tmp, f'{k}.jsonl') for k in
           ('single', 'ddp', 'ds', 'ds_resumed', 'fsdp', 'fsdp_resumed')}
    cfg = dict(
        single=write_config(tmp, 'single', DEMO_MIM, data_root, GLOBAL_BATCH, out['single'], 2),
        ddp=write_config(tmp, 'ddp', DEMO_MIM, data_root, GLOBAL_BATCH // 2, out['ddp'], EPOCHS),
        ds=write_config(tmp, 'ds', DEMO_DS, data_root, GLOBAL_BATCH // 2, out['ds'], EPOCHS,
                        kill=True),
        fsdp=write_config(tmp, 'fsdp', DEMO_FSDP, data_root, GLOBAL_BATCH // 2, out['fsdp'],
                          EPOCHS, kill=True, extra='model = dict(backbone=dict(with_cp=True))'))
    groups_file = osp.join(tmp, 'cls_groups.json')
    cfg['cls'] = osp.join(tmp, 'cls.py')
    with open(cfg['cls'], 'w') as f:
        f.write(f"""_base_ = {DEMO_CLS_DS!r}
custom_imports = dict(imports=['projects.eva.classification', 'projects.eva.engine',
                               'dist_helpers'], allow_failed_imports=False)
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(dataset=dict(data_root={cls_root!r})))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.75))
train_cfg = dict(type='IterBasedTrainLoop', _delete_=True, max_iters=2)
param_scheduler = []
default_hooks = dict(checkpoint=dict(interval=1000, by_epoch=False))
custom_hooks = [dict(type='_TestDumpParamGroupsHook', out_file={groups_file!r})]
""")
    wd = {k: osp.join(tmp, f'wd_{k}') for k in cfg}
    first = finish({k: launch(cfg[k], wd[k], nproc=1 if k == 'single' else 2,
                              extra=['--no-validate'] if k == 'cls' else [])
                    for k in cfg})
    resumed = {}
    for k in ('ds', 'fsdp'):  # --resume with the killed run's work dir: its latest checkpoint
        resumed[k] = launch(cfg[k], wd[k], extra=[
            '--resume', '--cfg-options', f'custom_hooks.0.out_file={out[k + "_resumed"]}',
            'custom_hooks.1.at=-1'])
    second = finish(resumed)
    return dict(tmp=tmp, out=out, wd=wd, first=first, second=second, groups=groups_file)


def _ok(runs, phase, name):
    rc, log = runs[phase][name]
    assert rc == 0, f'{name}: exit {rc}\n{log[-4000:]}'
    return log


@pytest.mark.slow
def test_two_processes_match_one_process_loss(runs):
    _ok(runs, 'first', 'single')
    log = _ok(runs, 'first', 'ddp')
    assert 'Distributed training: True' in log, log[-2000:]
    # tools/train.py freed the groups and joined gloo's threads before interpreter teardown
    assert 'process groups closed, 0 gloo threads left' in log, log[-2000:]
    single, dist = read_losses(runs['out']['single']), read_losses(runs['out']['ddp'])
    assert [r['iter'] for r in single] == [0, 1, 2, 3]
    assert [r['iter'] for r in dist] == list(range(ITERS_PER_EPOCH * EPOCHS))
    moved = abs(dist[-1]['loss'] - dist[0]['loss'])
    dist = dist[:4]
    # both runs average over the same masked patches of the same 16 images
    assert [r['weight'] for r in single] == [r['weight'] for r in dist]
    # iteration 0: identical weights and inputs -> the same loss up to float summation order
    assert dist[0]['loss'] == pytest.approx(single[0]['loss'], abs=1e-6)
    # later: DDP averages the two ranks' mean-loss gradients, the 1-process run the global
    # mean, which differ only by the masked-patch count per rank; the losses stay together
    for s, d in zip(single[1:], dist[1:]):
        assert d['loss'] == pytest.approx(s['loss'], abs=5e-4)
    assert moved > 1e-1  # and training moved the loss (not a frozen model)


@pytest.mark.slow
@pytest.mark.parametrize('engine', ['ds', 'fsdp'])
def test_sharded_engine_matches_ddp_and_resumes_after_kill(runs, engine):
    """20 iterations at equal global batch, fp32: ZeRO-1 / FSDP2 (with activation
    checkpointing inside the FSDP units) give the DDP run's losses within 1e-5, also after
    a SIGKILL and ``--resume`` from the iteration-10 checkpoint."""
    _ok(runs, 'first', 'ddp')
    rc, log = runs['first'][engine]
    assert rc != 0, 'the killed run should have died'  # SIGKILL before iteration 12
    # DeepSpeed's CPU-inference all-reduce op is not JIT-built for training (compat.py)
    assert 'deepspeed_shm_comm' not in log, log[-3000:]
    killed = read_losses(runs['out'][engine])
    assert [r['iter'] for r in killed] == list(range(KILL_AT)), log[-3000:]
    ckpt = osp.join(runs['wd'][engine], f'epoch_{CKPT_EPOCH}.pth')
    assert osp.exists(ckpt), os.listdir(runs['wd'][engine])
    log = _ok(runs, 'second', engine)
    assert f'Resume checkpoint from {ckpt}' in log, log[-3000:]
    resumed = read_losses(runs['out'][engine + '_resumed'])
    start = CKPT_EPOCH * ITERS_PER_EPOCH
    assert [r['iter'] for r in resumed] == list(range(start, EPOCHS * ITERS_PER_EPOCH))
    ddp = {r['iter']: r['loss'] for r in read_losses(runs['out']['ddp'])}
    for r in killed + resumed:
        assert r['loss'] == pytest.approx(ddp[r['iter']], abs=1e-5), (engine, r['iter'])
    for before, after in zip(killed[start:], resumed):  # the same iterations, bit for bit
        assert after['loss'] == pytest.approx(before['loss'], abs=1e-6)
    assert abs(ddp[19] - ddp[0]) > 1e-2  # training moved the loss
    import torch
    if engine == 'ds':
        # DeepSpeed's layout: one folder per checkpoint, ZeRO-1 optimizer shards per rank
        files = set(os.listdir(ckpt))
        assert {'mp_rank_00_model_states.pt', 'zero_pp_rank_0_mp_rank_00_optim_states.pt',
                'zero_pp_rank_1_mp_rank_00_optim_states.pt'} <= files, files
    else:
        # a full state dict of plain tensors, as DDP writes it: it loads without FSDP and
        # holds the DDP run's weights at the same iteration
        got = torch.load(ckpt, weights_only=True)
        ref = torch.load(osp.join(runs['wd']['ddp'], f'epoch_{CKPT_EPOCH}.pth'),
                         weights_only=True)
        assert got['state_dict'].keys() == ref['state_dict'].keys()
        for key, value in ref['state_dict'].items():
            assert type(got['state_dict'][key]) is torch.Tensor, key
            torch.testing.assert_close(got['state_dict'][key], value, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_deepspeed_keeps_layer_decay_lrs(runs):
    """EVALayerDecayOptimWrapperConstructor's per-parameter groups survive
    ``deepspeed.initialize``: the ZeRO optimizer steps each group with lr x 0.75**depth."""
    _ok(runs, 'first', 'cls')
    with open(runs['groups']) as f:
        dumped = json.load(f)
    assert dumped['optimizer'] == 'DeepSpeedZeroOptimizer'
    groups = dumped['groups']
    lr = 4e-3  # the demo's base lr (no scheduler in this run)
    depth = {g['name']: g['layer_id'] for g in groups}
    assert depth['backbone.patch_embed.proj.weight'] == 0
    assert depth['backbone.blocks.3.mlp.fc2.weight'] == 4
    assert depth['head.fc.weight'] == 5
    for g in groups:
        assert g['lr'] == pytest.approx(lr * 0.75 ** (5 - g['layer_id']), rel=1e-9), g
    assert {g['weight_decay'] for g in groups} == {0.0, 0.1}


@pytest.mark.parametrize('variant,strategy', [('deepspeed-zero1', 'DeepSpeedStrategy'),
                                              ('fsdp', 'EVAFullyShardStrategy')])
def test_flexible_runner_variants_of_the_giant_recipe(variant, strategy, tmp_path):
    """The ZeRO-1 / FSDP variants change only the engine; the demo variants train through
    the same engine section; the strategy objects build."""
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
    demo = Config.fromfile(DEMO_DS if strategy == 'DeepSpeedStrategy' else DEMO_FSDP)
    section = Config.fromfile(osp.join(ROOT, f'configs/pretrain/_base_/{variant}.py'))
    assert demo.runner_type == cfg.runner_type == section.runner_type
    if strategy == 'DeepSpeedStrategy':
        s = STRATEGIES.build(dict(copy.deepcopy(cfg.strategy), work_dir=str(tmp_path)))
        # EVA-01's DeepSpeed settings (utils.create_ds_config)
        assert s.config['zero_optimization']['stage'] == 1
        assert s.config['fp16'] == dict(enabled=True, auto_cast=False, loss_scale=0,
                                        initial_scale_power=16, loss_scale_window=500,
                                        hysteresis=2, min_loss_scale=1)
        assert s.config['gradient_clipping'] == 3.0
        assert cfg.optim_wrapper.type == 'DeepSpeedOptimWrapper'
        # the demo differs only in precision (DeepSpeed's fp16 needs a GPU)
        assert demo.strategy.zero_optimization == cfg.strategy.zero_optimization
        assert demo.strategy.gradient_clipping == cfg.strategy.gradient_clipping
        assert demo.strategy.config == cfg.strategy.config
        assert not demo.strategy.fp16.enabled
    else:
        s = STRATEGIES.build(dict(copy.deepcopy(cfg.strategy), work_dir=str(tmp_path)))
        assert s.param_dtype == 'bfloat16' and s.shard_modules == ('Block', )
        assert cfg.optim_wrapper.clip_grad == base.optim_wrapper.clip_grad
        assert demo.strategy == section.strategy
    assert type(s).__name__ == strategy

