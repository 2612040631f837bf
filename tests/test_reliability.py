"""Reliability: crash + resume, atomic checkpoints, clear errors, safe loading, fp16 numerics."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from projects.eva.demo.synthetic import make_unlabeled_images
from projects.eva.models import EVAViT
from projects.eva.runner import check_top_level_keys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
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


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    from mmengine.runner.checkpoint import save_checkpoint
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint({'state_dict': {'w': torch.ones(3)}}, str(path))
    good = path.read_bytes()

    class Crash(RuntimeError):
        pass

    def crash(fd):  # the process dies after the bytes were written, before they are final
        raise Crash('killed while saving')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(Crash):
        save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, str(path))
    monkeypatch.undo()
    assert path.read_bytes() == good  # the previous checkpoint is untouched
    assert os.listdir(tmp_path) == ['epoch_1.pth']


def test_non_finite_loss_stops_with_iteration_and_terms():
    from types import SimpleNamespace

    from projects.eva.engine import FiniteLossHook
    hook = FiniteLossHook()
    runner = SimpleNamespace(iter=41, epoch=2)
    hook.after_train_iter(runner, 0, outputs={'loss': torch.tensor(0.5)})
    with pytest.raises(FloatingPointError, match=r'iteration 42 \(epoch 3\).*loss_mask.*nan'):
        hook.after_train_iter(runner, 0, outputs={'loss': torch.tensor(float('nan')),
                                                  'loss_mask': torch.tensor(float('nan')),
                                                  'loss_cls': torch.tensor(0.3)})


def test_typo_in_top_level_config_key_is_reported():
    cfg = Config(dict(model=dict(type='x'), optim_wraper=dict(), img_size=224))
    with pytest.raises(KeyError, match="'optim_wraper'.*did you mean 'optim_wrapper'"):
        check_top_level_keys(cfg, 'cfg.py')
    check_top_level_keys(Config(dict(model=dict(), img_size=224, data_root='x',
                                     test_pipeline=[], val_pipeline=[])), 'ok.py')
    with pytest.raises(KeyError, match="did you mean 'param_scheduler'"):
        check_top_level_keys(Config(dict(param_schedulers=[])), 'cfg.py')


def test_bad_images_and_empty_folders_name_the_file(tmp_path):
    from mmpretrain.registry import DATASETS
    import projects.eva.pretrain  # noqa: F401
    pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
    (tmp_path / 'empty').mkdir()
    with pytest.raises(RuntimeError, match='empty'):
        DATASETS.build(dict(type='CustomDataset', data_root=str(tmp_path / 'empty'),
                            with_label=False, pipeline=pipeline))
    root = tmp_path / 'imgs'
    root.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / 'good.png')
    (root / 'broken.png').write_bytes(b'not a png at all')
    ds = DATASETS.build(dict(type='CustomDataset', data_root=str(root), with_label=False,
                             pipeline=pipeline, test_mode=True))
    names = [osp.basename(ds.get_data_info(i)['img_path']) for i in range(len(ds))]
    with pytest.raises(Exception, match='broken.png'):
        ds[names.index('broken.png')]
    os.remove(root / 'good.png')  # listed, then deleted: a missing file is named too
    with pytest.raises(FileNotFoundError, match='good.png'):
        ds[names.index('good.png')]


def test_wrong_architecture_checkpoint_is_reported(tmp_path):
    arch = dict(embed_dims=48, num_layers=2, num_heads=3, feedforward_channels=96)
    wide = EVAViT(dict(arch, embed_dims=96, num_heads=3), img_size=56)
    path = str(tmp_path / 'wide.pth')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in wide.state_dict().items()}}, path)
    model = EVAViT(arch, img_size=56, init_cfg=dict(type='Pretrained', checkpoint=path,
                                                    prefix='backbone.'))
    with pytest.raises(ValueError, match='pos_embed of shape .* does not fit embed_dims 48'):
        model.init_weights()
    deep = EVAViT(dict(arch, num_layers=3), img_size=56)
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\).*blocks\.2'):
        EVAViT(arch, img_size=56).load_state_dict(deep.state_dict())


def test_weights_only_loading_refuses_code(tmp_path):
    from projects.eva.checkpoint import load_weights

    class Evil:
        def __reduce__(self):
            return (os.system, ('echo pwned',))

    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'x': Evil()}, path)
    with pytest.raises(RuntimeError, match='cannot load weights from .*evil.pth'):
        load_weights(path)


def test_giant_depth_fp16_autocast_stays_finite():
    """40 blocks (reduced width) under fp16 autocast with EVA-01's fp32 attention/LayerNorm,
    stressed with large q/k logits; the result must stay finite and close to fp32."""
    arch = dict(embed_dims=64, num_layers=40, num_heads=4, feedforward_channels=256)
    torch.manual_seed(0)
    model = EVAViT(arch, img_size=56, fp32_attn_and_norm=True, init_std=0.02)
    model.init_weights()
    with torch.no_grad():
        for blk in model.blocks:
            blk.attn.qkv.weight[:128].mul_(400)  # q, k rows: logits far beyond fp16 range
    x = torch.randn(2, 3, 56, 56)
    ref = model(x)[0]
    with torch.autocast('cpu', dtype=torch.float16):
        out = model(x)[0]
    assert torch.isfinite(out).all()
    # near-one-hot attention: fp16 rounding flips a few tokens' choices, the rest agrees
    assert (out.float() - ref).abs().mean() < 0.01 * ref.abs().mean()
    # Without the option the SDPA kernels (which accumulate in fp32) also stay finite on this
    # machine; the option matters for kernels that materialise fp16 logits.
    model.blocks.apply(lambda m: setattr(m, 'fp32_attention', False))
    with torch.autocast('cpu', dtype=torch.float16):
        assert torch.isfinite(model(x)[0]).all()
