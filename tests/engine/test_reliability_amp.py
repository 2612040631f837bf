"""Mixed precision on CPU: the loss scaler and scheduler resume exactly; fp16 gradient
overflow is a skipped step, not a NaN stop; 40 fp16 blocks stay finite."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset
from mmengine.model import BaseModel
from mmengine.registry import DATASETS as ENGINE_DATASETS
from mmengine.registry import MODELS as ENGINE_MODELS

from projects.eva.models import EVAViT
from projects.eva.runner import runner_config

@ENGINE_MODELS.register_module(force=True)
class _AmpToyModel(BaseModel):
    """8 -> 8 linear map fitted to a fixed permutation of its input (fp16 under autocast)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, inputs, data_samples=None, mode='loss'):
        x = torch.stack(inputs)
        return dict(loss=(self.fc(x).float() - x.flip(-1)).pow(2).mean())


@ENGINE_DATASETS.register_module(force=True)
class _AmpToyData(Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, idx):
        g = torch.Generator().manual_seed(idx)
        return dict(inputs=torch.randn(8, generator=g))


class _Recorder:
    """Per-iteration scaler state, lr, loss and a weight checksum (after the step)."""

    def __init__(self):
        from mmengine.hooks import Hook

        rec = self

        class H(Hook):
            priority = 'LOWEST'

            def before_train(self, runner):
                rec.start = dict(iter=runner.iter,
                                 scaler=runner.optim_wrapper.loss_scaler.state_dict())

            def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
                ow = runner.optim_wrapper
                rec.rows[runner.iter + 1] = dict(
                    scale=ow.loss_scaler.get_scale(),
                    tracker=ow.loss_scaler._get_growth_tracker(),
                    lr=ow.get_lr()['lr'][0], loss=float(outputs['loss'].detach()),
                    weight=runner.model.fc.weight.detach().clone())

        self.hook, self.rows, self.start = H(), {}, None


class _Crash(RuntimeError):
    pass


def _amp_config(tmp_path):
    path = tmp_path / 'toy_amp.py'
    path.write_text(
        "model = dict(type='_AmpToyModel')\n"
        "train_dataloader = dict(batch_size=4, num_workers=0, collate_fn=dict("
        "type='pseudo_collate'), sampler=dict(type='InfiniteSampler', shuffle=True),"
        " dataset=dict(type='_AmpToyData'))\n"
        "train_cfg = dict(type='IterBasedTrainLoop', max_iters=12)\n"
        "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))\n"
        "param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,"
        " end=4), dict(type='CosineAnnealingLR', by_epoch=False, begin=4, end=12, T_max=8)]\n"
        "default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=4,"
        " by_epoch=False), logger=dict(type='LoggerHook', interval=1))\n"
        "custom_hooks = [dict(type='FiniteLossHook')]\n"
        "randomness = dict(seed=0, deterministic=True)\n"
        "custom_imports = dict(imports=['projects.eva.engine'], allow_failed_imports=False)\n")
    return str(path)


def _amp_runner(config, work_dir, resume=False, crash_at=None, max_iters=12):
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    cfg = runner_config(config, work_dir=str(work_dir), amp=True, cfg_options={
        'optim_wrapper.loss_scale': dict(init_scale=2.**18, growth_interval=3),
        'train_cfg.max_iters': max_iters})
    cfg.resume = resume
    runner = Runner.from_cfg(cfg)
    rec = _Recorder()
    runner.register_hook(rec.hook)
    if crash_at is not None:
        class CrashHook(Hook):  # the process dies after checkpoint iter_4, inside iter 6
            def before_train_iter(self, runner, batch_idx, data_batch=None):
                if runner.iter + 1 == crash_at:
                    raise _Crash(f'killed at iteration {crash_at}')
        runner.register_hook(CrashHook())
    return runner, rec


@pytest.mark.slow
def test_amp_on_cpu_resumes_loss_scaler_and_scheduler_exactly(tmp_path):
    from projects.eva.engine.amp import AnyDeviceAmpOptimWrapper
    config = _amp_config(tmp_path)
    full, rec_full = _amp_runner(config, tmp_path / 'full')
    full.train()
    assert type(full.optim_wrapper) is AnyDeviceAmpOptimWrapper  # --amp picked it on CPU
    rows = rec_full.rows
    assert sorted(rows) == list(range(1, 13))
    # the scaler really worked: fp16 gradients overflowed at 2**18 and 2**17 (steps skipped,
    # scale halved), the scale grew back after 3 clean steps and overflowed again later
    scales = [rows[i]['scale'] for i in range(1, 13)]
    assert scales[:2] == [2.**17, 2.**16], scales
    assert (np.diff(scales) > 0).sum() >= 1 and (np.diff(scales) < 0).sum() >= 2, scales
    # the run killed after iter_4.pth (inside iteration 6) resumes with the saved scaler
    cut, _ = _amp_runner(config, tmp_path / 'cut', crash_at=6)
    with pytest.raises(_Crash):
        cut.train()
    saved = torch.load(tmp_path / 'cut' / 'iter_4.pth', weights_only=True)
    scaler = saved['optimizer']['loss_scaler']
    assert scaler['scale'] == rows[4]['scale'] and scaler['_growth_tracker'] == rows[4]['tracker']
    assert scaler['scale'] != 2.**18 and scaler['_growth_tracker'] > 0  # not a fresh scaler
    resumed, rec = _amp_runner(config, tmp_path / 'cut', resume=True)
    resumed.train()
    assert rec.start['iter'] == 4 and rec.start['scaler'] == scaler
    assert sorted(rec.rows) == list(range(5, 13))
    lrs = [rows[i]['lr'] for i in range(5, 13)]
    assert len(set(lrs)) >= 7  # the cosine schedule moves every iteration
    for i in range(5, 13):
        a, b = rows[i], rec.rows[i]
        assert (b['scale'], b['tracker'], b['lr']) == (a['scale'], a['tracker'], a['lr']), i
        assert b['loss'] == pytest.approx(a['loss'], abs=1e-6), i
        torch.testing.assert_close(b['weight'], a['weight'], rtol=0, atol=1e-6)


@pytest.mark.slow
def test_fp16_overflow_is_a_skipped_step_not_a_nan_loss(tmp_path):
    """FiniteLossHook is registered (config): gradient overflow at the huge initial scale is
    handled by the scaler (step skipped, weights unchanged, scale halved), training goes on."""
    runner, rec = _amp_runner(_amp_config(tmp_path), tmp_path / 'w', max_iters=3)
    before = runner.model.fc.weight.detach().clone()
    runner.train()  # FiniteLossHook would raise FloatingPointError on a non-finite loss
    assert any(type(h).__name__ == 'FiniteLossHook' for h in runner.hooks)
    assert [rec.rows[i]['scale'] for i in (1, 2, 3)] == [2.**17, 2.**16, 2.**16]
    assert torch.equal(rec.rows[1]['weight'], before)  # overflow: step skipped
    assert torch.equal(rec.rows[2]['weight'], before)
    assert not torch.equal(rec.rows[3]['weight'], before)  # scale fits: a real step
    assert all(np.isfinite(r['loss']) for r in rec.rows.values())


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
