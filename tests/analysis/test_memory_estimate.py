"""tools/analysis_tools/estimate_memory.py: per-GPU memory of any EVA config on the meta
device. Byte counts by hand where they can be; the real configs' table is in the README."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from projects.eva.analysis.measure import count_saved_activations
from projects.eva.analysis.memory import (GIB, LiveBytes, build_model, estimate_config_memory,
                                          gpu_tier, measured_part, task_of)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs/demo')
CLS = osp.join(DEMO, 'eva-cls_vit-tiny-p14_1xb64-80e_digits.py')
DET = osp.join(DEMO, 'eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py')
VIDEO = osp.join(DEMO, 'eva-video_vit-tiny-p14_1xb16-8e_moving-shapes.py')
SEG = osp.join(DEMO, 'eva-mask2former_vit-tiny-adapter-p16_1xb8-160it_shapes-seg-128.py')
GIANT_MIM = osp.join(ROOT, 'configs/pretrain/eva-mim_vit-g-p14_128xb32-150e_merged30m.py')
LOWMEM_MIM = GIANT_MIM.replace('.py', '_ckpt.py')


def load_tool(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        f'_tool_{name}', osp.join(ROOT, 'tools/analysis_tools', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_live_bytes_by_hand():
    """Peak of the live op outputs on meta: y and z (4000 B each) overlap, w replaces y."""
    with torch.device('meta'):
        x = torch.randn(1000)
    with LiveBytes() as live:
        y = x * 2
        z = y + 1
        del y
        w = z * 3
        v = w.view(10, 100)  # a view shares w's storage: no new bytes
    assert live.peak == 8000 and live.current == 8000
    del z, w, v
    assert live.current == 0


def _cpu_counts(path):
    cfg = Config.fromfile(path)
    model = build_model(cfg)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


@pytest.mark.parametrize('path', [CLS, DET])
def test_model_states_exact(path):
    """Weights / grads / Adam states by hand from the parameters counted on a CPU build:
    DDP + AMP 4 + 4 + 8 B per trainable parameter (frozen ones: 4 B of weights), ZeRO-1
    2 + 2 + 12 / N, FSDP all / N."""
    total, trainable = _cpu_counts(path)
    cfg = Config.fromfile(path)
    frozen = total - trainable
    r = estimate_config_memory(cfg, 'train', batch=2, dtype='fp32', strategy='ddp')
    assert (r['params'], r['trainable']) == (total, trainable)
    assert r['weights'] * GIB == 4 * total
    assert r['grads'] * GIB == 4 * trainable
    assert r['optimizer'] * GIB == 8 * trainable
    z = estimate_config_memory(cfg, 'train', batch=2, dtype='fp32', strategy='zero1', gpus=4)
    assert z['weights'] * GIB == 2 * trainable + 2 * frozen
    assert z['optimizer'] * GIB == pytest.approx(12 * trainable / 4)
    f = estimate_config_memory(cfg, 'train', batch=2, dtype='fp32', strategy='fsdp', gpus=4)
    assert f['weights'] * GIB == pytest.approx((2 * trainable + 2 * frozen) / 4)
    assert r['total'] == pytest.approx(r['weights'] + r['grads'] + r['optimizer'] +
                                       r['activations'])


def test_activations_measured_through_the_model():
    """Classification demo: the meta count is the real CPU run's saved bytes up to the
    attention kernel's own bookkeeping (CPU flash keeps a logsumexp); checkpointing cuts
    them; per sample = total / batch; test mode counts live tensors, not saved ones."""
    cfg = Config.fromfile(CLS)
    model = build_model(cfg).train()
    _, fn, x = measured_part(cfg, model, 2, (56, 56))
    with count_saved_activations(model) as res:
        fn(torch.randn(x.shape))
    meta = estimate_config_memory(Config.fromfile(CLS), 'train', batch=2, dtype='fp32')
    assert meta['activations'] * GIB == pytest.approx(res['bytes'], rel=0.05)
    assert meta['per_sample'] == pytest.approx(meta['activations'] / 2)
    cp = estimate_config_memory(Config.fromfile(CLS), 'train', batch=2, dtype='fp32',
                                with_cp=True)
    assert cp['with_cp'] and cp['activations'] < meta['activations'] / 2
    test = estimate_config_memory(Config.fromfile(CLS), 'test', batch=2, dtype='fp32')
    assert 0 < test['activations'] < meta['activations'] and test['grads'] == 0


def test_adapter_activations_measured_whole():
    """The ViT-Adapter runs on meta (its deformable sampling takes int sizes): the estimate
    counts the spatial prior module, injectors and extractors too, and equals the real CPU
    run's saved bytes (before: its EVAViT only, a third of the whole at 896)."""
    cfg = Config.fromfile(SEG)
    model = build_model(cfg).train()
    part, fn, x = measured_part(cfg, model, 2, (64, 64))
    assert part.startswith('ViT-Adapter')
    with count_saved_activations(model) as res:
        fn(torch.randn(x.shape))
    with count_saved_activations(model) as vit_only:
        model.backbone.vit(torch.randn(x.shape))
    meta = estimate_config_memory(Config.fromfile(SEG), 'train', batch=2, dtype='fp32',
                                  shape=(64, 64))
    assert meta['activations'] * GIB == pytest.approx(res['bytes'], rel=0.05)
    assert res['bytes'] > 2 * vit_only['bytes']


def test_every_task_runs_on_meta():
    tasks = {}
    for path in (CLS, DET, VIDEO, SEG):
        r = estimate_config_memory(Config.fromfile(path), 'train', batch=1)
        tasks[r['task']] = r
        assert r['activations'] > 0 and r['tier'] == 24
    assert set(tasks) == {'classification', 'detection', 'video', 'segmentation'}
    assert 'neck' in tasks['detection']['part']
    assert tasks['video']['shape'] == (8, 56, 56)
    assert task_of(Config.fromfile(GIANT_MIM)) == 'mim'


def test_gpu_tiers():
    assert gpu_tier(21.9) == 24 and gpu_tier(22.1) == 40 and gpu_tier(78.1) is None


def test_tool_prints_rows(capsys):
    main = load_tool('estimate_memory').main
    rows = main([DET, '--mode', 'test', '--batch', '1'])
    assert rows[0]['mode'] == 'test' and rows[0]['grads'] == 0
    rows = main([CLS, '--batch', '2', '--strategies', 'zero1', 'ddp', '--gpus', '8',
                 '--with-cp', 'both'])
    assert [(r['strategy'], r['with_cp']) for r in rows] == [
        ('zero1', False), ('zero1', True), ('ddp', False), ('ddp', True)]
    # the README's low-memory MIM variant: the base recipe (39.5 GiB at batch 32, over a
    # 40 GB card with the CUDA context) with checkpointing fits 24 GB
    base, low = Config.fromfile(GIANT_MIM), Config.fromfile(LOWMEM_MIM)
    assert not base.model.backbone.with_cp and low.model.backbone.with_cp
    low.model.backbone.with_cp = False
    assert low.to_dict() == base.to_dict()
    rows = main([LOWMEM_MIM])
    out = capsys.readouterr().out
    assert rows[0]['with_cp'] and rows[0]['batch'] == 32 and rows[0]['tier'] == 24
    assert rows[0]['trainable'] == 1_012_229_632  # = n_parameters in EVA-01's MIM log
    assert '| eva-mim_vit-g-p14_128xb32-150e_merged30m_ckpt | mim | train |' in out
