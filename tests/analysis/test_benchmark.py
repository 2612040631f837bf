"""Benchmark / FLOP / memory tools: exact counts by hand, the tools run and print their
tables (no timing is asserted: this machine is shared)."""
import os.path as osp

import pytest
import torch
import torch.nn as nn

from projects.eva.analysis.flops import count_flops, count_flops_mmengine, vit_flops
from projects.eva.analysis.measure import count_saved_activations
from projects.eva.analysis.memory import (backbone_activation_bytes,
                                          estimate_pretrain_memory, model_state_bytes)
from projects.eva.models.eva_vit import ARCH_ZOO, EVAViT

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        f'_tool_{name}', osp.join(ROOT, 'tools/analysis_tools', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_bench = load_tool('benchmark_backbone')
build_models, max_abs_diff, window_vs_global = (
    _bench.build_models, _bench.max_abs_diff, _bench.window_vs_global)

GIANT_MIM = osp.join(ROOT, 'configs/pretrain/eva-mim_vit-g-p14_128xb32-150e_merged30m.py')

# ViT-g/14 @224 by hand: 256 patches, N = 257 tokens, D = 1408, F = 6144, 40 blocks
#   patch conv  256 * 1408 * (3 * 14 * 14)          =     211,943,424 MACs
#   per block   257 * (4 * 1408^2 + 2 * 1408 * 6144) = 6,484,549,632
#               + 2 * 257^2 * 1408 (q k^T, attn v)   =   185,993,984
#   total = 211,943,424 + 40 * 6,670,543,616 = 267,030,083,584 MACs = 534,060,167,168 FLOPs
GIANT_FLOPS = 534_060_167_168


def test_giant_flops_match_hand_count():
    assert vit_flops(ARCH_ZOO['giant'], 224, 14) == GIANT_FLOPS
    with torch.device('meta'):
        model = EVAViT('giant', img_size=224, patch_size=14)
        x = torch.randn(1, 3, 224, 224)
    total, by_op = count_flops(model, (x, ))
    assert total == GIANT_FLOPS
    assert by_op['aten.convolution'] == 2 * 211_943_424


def test_counters_agree_on_cpu(tiny_arch):
    """Real CPU tensors: torch's counter (with the CPU attention kernel added) and mmengine's
    fvcore-style counter (with SDPA added, minus its LayerNorm FLOPs) give the hand count."""
    model = EVAViT(tiny_arch, img_size=56, patch_size=14).eval()
    x = torch.randn(2, 3, 56, 56)
    expected = 2 * vit_flops(tiny_arch, 56, 14)
    with torch.no_grad():
        total, by_op = count_flops(model, (x, ))
        mm_total, mm_by_op = count_flops_mmengine(model, (x, ))
    assert total == expected
    assert any('flash_attention' in k for k in by_op)
    # LayerNorm: fvcore counts 5 FLOP-MACs per element, 2 norms per block + final norm
    ln = 2 * 5 * 2 * 17 * 48 * (2 * tiny_arch['num_layers'] + 1)
    assert mm_by_op['layer_norm'] == ln
    assert mm_total - ln == expected


def test_saved_activation_count_by_hand():
    lin = nn.Linear(8, 16)
    x = torch.randn(4, 8)
    with count_saved_activations(lin) as res:
        y = torch.relu(lin(x))  # saves x (4*8 fp32) and relu's output (4*16 fp32)
    assert res['bytes'] == 4 * 8 * 4 + 4 * 16 * 4
    assert y.requires_grad


def test_checkpointing_cuts_giant_activations():
    """ViT-g/14, batch 2, fp16 with fp32 attention/norm (EVA-01 numerics), on meta: with
    per-block checkpointing only the block inputs stay (40 x 2 x 257 x 1408 fp16)."""
    cfg = dict(type='EVAViT', arch='giant', img_size=224, patch_size=14,
               with_mask_token=True, fp32_attn_and_norm=True)
    full = backbone_activation_bytes(cfg, 2, 'fp16', with_cp=False)
    ckpt = backbone_activation_bytes(cfg, 2, 'fp16', with_cp=True)
    block_inputs = 40 * 2 * 257 * 1408 * 2
    assert ckpt['activations'] >= block_inputs
    assert ckpt['activations'] < 1.1 * block_inputs
    assert full['activations'] > 3 * ckpt['activations']
    assert full['params'] == 1_011_147_520  # encoder 1,011,146,112 + mask token


def test_pretrain_memory_estimate():
    from mmengine.config import Config
    p = 1_000_000
    assert model_state_bytes(p, 'zero1', 8) == dict(params=2 * p, grads=2 * p,
                                                   optimizer=12 * p / 8)
    assert model_state_bytes(p, 'ddp-amp', 8) == dict(params=4 * p, grads=4 * p,
                                                     optimizer=8 * p)
    with pytest.raises(ValueError, match='strategy'):
        model_state_bytes(p, 'zero4', 8)
    r = estimate_pretrain_memory(Config.fromfile(GIANT_MIM), 2, 'fp16', True, 'zero1', 128)
    assert r['trainable_params'] == 1_012_229_632  # = n_parameters in EVA-01's MIM log
    assert r['teacher_params'] == 303_966_208  # OpenAI CLIP ViT-L/14 visual
    gib = 2**30
    assert r['params'] == pytest.approx(2 * 1_012_229_632 / gib)
    assert r['optimizer'] == pytest.approx(12 * 1_012_229_632 / 128 / gib)


def test_models_share_weights_and_outputs(tiny_arch):
    models = build_models(tiny_arch, img_size=56, patch_size=14)
    assert set(models) == {'EVAViT', 'timm Eva', 'mmpretrain BEiTViT'}
    diffs = max_abs_diff(models, torch.randn(2, 3, 56, 56))
    assert diffs['timm Eva'] < 1e-5 and diffs['mmpretrain BEiTViT'] < 1e-5
    # mmpretrain's BEiTViT has no checkpointing: left out, not faked
    assert set(build_models(tiny_arch, 56, 14, with_cp=True)) == {'EVAViT', 'timm Eva'}


def test_benchmark_tool_prints_table(capsys):
    main = load_tool('benchmark_backbone').main
    rows = main(['--archs', '48,2,3,131', '--img-size', '56', '--batch', '2', '--rounds', '1',
                 '--warmup', '0', '--dtypes', 'fp32', '--device', 'cpu'])
    out = capsys.readouterr().out
    assert '| arch | dtype | ckpt | mode | model | img/s |' in out
    # (3 models without ckpt + 2 with) x 2 modes
    assert len(rows) == (3 + 2) * 2
    assert out.count('| EVAViT |') == 4
    # every EVAViT row carries the paired ratio against each other model present
    eva_lines = [ln for ln in out.splitlines() if '| EVAViT |' in ln]
    assert sum('timm ' in ln and 'mmpretrain ' in ln for ln in eva_lines) == 2  # no ckpt
    assert sum('timm ' in ln and 'mmpretrain ' not in ln for ln in eva_lines) == 2  # ckpt
    for r in rows:
        assert r['img_per_s'] > 0
        if r['model'] != 'EVAViT':
            assert r['max_abs_diff'] < 1e-5


def test_paired_speedup_is_the_median_of_per_round_ratios():
    from projects.eva.analysis.measure import paired_speedup
    # rounds: other/ref = 2.0, 4.0, 1.5 -> median 2.0; the ratio of medians would say 3/1 = 3
    assert paired_speedup([2., 4., 3.], [1., 1., 2.]) == 2.0
    with pytest.raises(ValueError, match='same non-zero number of rounds'):
        paired_speedup([1., 2.], [1.])


def test_window_vs_global_runs():
    r = window_vs_global(dict(embed_dims=48, num_layers=4, num_heads=3,
                              feedforward_channels=96), img_size=128, patch_size=16,
                         window_size=4, rounds=1, log=lambda s: None)
    for method in ('auto', 'dense'):
        assert set(r[method]['block']) == {'window', 'global', 'ratio'}
        assert r[method]['backbone_ratio'] > 0
    assert 'bounded kernel / dense path' in _bench.window_vs_global_table(r)


def test_get_flops_tool(capsys):
    main = load_tool('get_flops').main
    total, params = main([GIANT_MIM])
    assert total == GIANT_FLOPS
    assert params == 1_011_147_520
    assert 'FLOPs: 534.06 G' in capsys.readouterr().out
    demo = osp.join(ROOT, 'configs/demo/eva-mim_vit-tiny-p14_1xb32-8e_shapes.py')
    total, _ = main([demo, '--counter', 'mmengine'])
    demo_arch = dict(embed_dims=96, num_layers=4, num_heads=3, feedforward_channels=384)
    # + LayerNorms: 5 per element (fvcore), 8 block norms + final, 65 tokens x 96
    assert total == vit_flops(demo_arch, 112, 14) + 2 * 5 * 65 * 96 * 9


def _measure_small_step_after_big_peak():
    """Hold 512 MiB once, free it, then measure a 64 MiB step: above glibc's largest dynamic
    mmap threshold (32 MiB), so the step gets fresh pages whatever the heap already holds
    resident (a 16 MiB step measured 4 MiB after the whole suite had been imported)."""
    from projects.eva.analysis.measure import extra_peak_rss
    big = torch.ones(2 ** 27)  # 512 MiB
    big.add_(1)
    del big
    return extra_peak_rss(lambda: torch.ones(2 ** 24).add_(1))  # 64 MiB


@pytest.mark.skipif(not osp.exists('/proc/self/clear_refs'), reason='Linux only')
@pytest.mark.slow  # starts a fresh Python (imports the whole stack)
def test_extra_peak_rss_ignores_earlier_peaks():
    """The memory benchmark measured 5471 MiB for a 493 MiB step: ru_maxrss remembered the
    parent's RSS across exec. The high-water mark is now reset before the step, in-process
    and in a subprocess whose parent holds a large tensor."""
    import subprocess
    import sys
    extra = _measure_small_step_after_big_peak()
    assert 32 * 2 ** 20 < extra < 256 * 2 ** 20, extra / 2 ** 20
    held = torch.ones(2 ** 27).add_(1)  # the parent holds 512 MiB while the child starts
    code = ('from projects.eva.analysis.measure import extra_peak_rss; import torch; '
            'print(extra_peak_rss(lambda: torch.ones(2 ** 24).add_(1)))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    del held
    child = int(out.stdout.split()[-1])
    assert 48 * 2 ** 20 < child < 160 * 2 ** 20, child / 2 ** 20
