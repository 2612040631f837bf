"""Throughput and memory of EVAViT against timm ``Eva`` and mmpretrain ``BEiTViT``.

    python tools/analysis_tools/benchmark_backbone.py --archs base large --batch 8 \
        [--dtypes fp32 bf16] [--ckpt both] [--device cuda] [--rounds 5] [--compile]
        [--window-vs-global] [--out results.md]

All models get EVAViT's weights (outputs are compared), are built at the same architecture
and numerics, and are timed round-robin in one process so the ratios share the machine's
load; the spread column is (max - min) / median over the rounds. Prints a markdown table.
Absolute numbers only mean something on a quiet machine; ratios are what to compare.

This harness (it imports timm and mmpretrain) lives here, not in the ``projects.eva``
library; ``gpu_benchmark.py`` reuses it.
"""
import argparse
import os.path as osp
import sys
from typing import Callable, Dict, List, Optional, Sequence, Union

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from projects.eva import compat  # noqa: E402

compat.apply()  # the pinned stack's fixes, before mmengine.runner is imported
from projects.eva.analysis.measure import (activation_bytes, make_step,  # noqa: E402
                                           matmul_peak_flops, paired_speedup, peak_memory,
                                           time_interleaved)
from projects.eva.models.eva_vit import ARCH_ZOO, EVAViT  # noqa: E402

MODEL_NAMES = ('EVAViT', 'timm Eva', 'mmpretrain BEiTViT')


def resolve_arch(arch: Union[str, dict]) -> dict:
    if isinstance(arch, dict):
        return arch
    if arch not in ARCH_ZOO:
        raise KeyError(f'unknown arch {arch!r}; choose from {sorted(ARCH_ZOO)} or pass a dict')
    return ARCH_ZOO[arch]


# ------------------------------------------------------------------ the three models
def build_eva(arch, img_size=224, patch_size=14, with_cp=False, **kwargs) -> EVAViT:
    model = EVAViT(arch, img_size=img_size, patch_size=patch_size, out_type='raw',
                   final_norm=True, with_cp=with_cp, **kwargs)
    model.init_weights()
    return model


class TimmEva(nn.Module):
    """timm ``Eva`` trunk (token pooling off, final norm on) returning ``(tokens, )``."""

    def __init__(self, arch, img_size=224, patch_size=14, with_cp=False):
        super().__init__()
        from timm.models.eva import Eva
        a = resolve_arch(arch)
        self.model = Eva(img_size=img_size, patch_size=patch_size, num_classes=0,
                         global_pool='token', use_fc_norm=False, embed_dim=a['embed_dims'],
                         depth=a['num_layers'], num_heads=a['num_heads'],
                         mlp_ratio=a['feedforward_channels'] / a['embed_dims'], qkv_bias=True)
        self.model.set_grad_checkpointing(with_cp)

    def load_eva(self, eva: EVAViT):
        self.model.load_state_dict(eva.state_dict(), strict=True)  # same key names

    def forward(self, x):
        return (self.model.forward_features(x), )


class MMPretrainBEiT(nn.Module):
    """mmpretrain ``BEiTViT`` configured as EVA-01 (``eva-g``-style: q/v bias, absolute pos
    embed, no rel-pos, no layer scale), raw tokens after the final norm."""

    def __init__(self, arch, img_size=224, patch_size=14, with_cp=False):
        super().__init__()
        if with_cp:
            raise ValueError('mmpretrain BEiTViT has no activation checkpointing option')
        from mmpretrain.models import BEiTViT
        self.model = BEiTViT(
            arch=dict(resolve_arch(arch)), img_size=img_size, patch_size=patch_size,
            out_type='raw', final_norm=True, layer_scale_init_value=0., use_abs_pos_emb=True,
            use_rel_pos_bias=False, use_shared_rel_pos_bias=False, bias='qv_bias',
            norm_cfg=dict(type='LN', eps=1e-6))

    def load_eva(self, eva: EVAViT):
        sd = {}
        for k, v in eva.state_dict().items():
            k = (k.replace('patch_embed.proj.', 'patch_embed.projection.')
                 .replace('blocks.', 'layers.').replace('.norm1.', '.ln1.')
                 .replace('.norm2.', '.ln2.').replace('.mlp.fc1.', '.ffn.layers.0.0.')
                 .replace('.mlp.fc2.', '.ffn.layers.1.'))
            sd['ln1.' + k[5:] if k.startswith('norm.') else k] = v
        missing, unexpected = self.model.load_state_dict(sd, strict=False)
        if missing or unexpected:
            raise KeyError(f'BEiTViT weight mapping incomplete: missing {missing[:5]}, '
                           f'unexpected {unexpected[:5]}')

    def forward(self, x):
        return self.model(x)


def build_models(arch, img_size=224, patch_size=14, with_cp=False,
                 names: Sequence[str] = MODEL_NAMES, eva_kwargs: Optional[dict] = None
                 ) -> Dict[str, nn.Module]:
    """The requested models with EVAViT's weights copied into the others. Models that do not
    support a setting (mmpretrain + checkpointing) are left out."""
    eva = build_eva(arch, img_size, patch_size, with_cp, **(eva_kwargs or {}))
    models = {}
    for name in names:
        if name == 'EVAViT':
            models[name] = eva
            continue
        cls = {'timm Eva': TimmEva, 'mmpretrain BEiTViT': MMPretrainBEiT}[name]
        try:
            other = cls(arch, img_size, patch_size, with_cp)
        except ValueError:
            continue
        other.load_eva(eva)
        models[name] = other
    return models


# ------------------------------------------------------------------ measurements
def max_abs_diff(models: Dict[str, nn.Module], x: torch.Tensor, ref: str = 'EVAViT'
                 ) -> Dict[str, float]:
    """fp32 eval outputs of every model against ``ref`` (same weights, so ~1e-6)."""
    with torch.no_grad():
        outs = {}
        for name, m in models.items():
            m.eval()
            outs[name] = m(x)[-1].float()
    return {n: (o - outs[ref]).abs().max().item() for n, o in outs.items() if n != ref}


# ------------------------------------------------------------------ the whole table
def run_benchmark(archs: Sequence[str] = ('base', ), img_size: int = 224, patch_size: int = 14,
                  batch_size: int = 8, dtypes: Sequence[str] = ('fp32', 'bf16'),
                  cps: Sequence[bool] = (False, True), modes: Sequence[str] = ('fwd', 'fwd+bwd'),
                  device: str = 'cpu', rounds: int = 5, warmup: int = 1,
                  names: Sequence[str] = MODEL_NAMES, compile_eva: bool = False,
                  log: Callable[[str], None] = print) -> List[dict]:
    """One row per (arch, dtype, checkpointing, mode, model)."""
    from projects.eva.analysis.flops import vit_flops
    rows = []
    peaks = {dt: matmul_peak_flops(device, dt) for dt in dtypes}
    for arch in archs:
        a = resolve_arch(arch)
        fwd_flops = vit_flops(a, img_size, patch_size) * batch_size
        x = torch.randn(batch_size, 3, img_size, img_size, device=device)
        for cp in cps:
            with torch.device(device):  # built and initialised there, not on CPU and copied
                models = build_models(arch, img_size, patch_size, cp, names)
            models = {k: m.to(device) for k, m in models.items()}
            if compile_eva:
                models['EVAViT compiled'] = torch.compile(models['EVAViT'])
            diffs = max_abs_diff({k: v for k, v in models.items() if 'compiled' not in k}, x)
            for dtype in dtypes:
                acts = {k: activation_bytes(m, x, device, dtype) for k, m in models.items()
                        if 'compiled' not in k}
                for mode in modes:
                    steps = {k: make_step(m, x, mode, device, dtype) for k, m in models.items()}
                    res = time_interleaved(steps, rounds, warmup, device)
                    flops = fwd_flops * (1 if mode == 'fwd' else 3)
                    if cp and mode == 'fwd+bwd':
                        flops += fwd_flops  # the recomputed forward
                    for name, r in res.items():
                        row = dict(arch=arch if isinstance(arch, str) else 'custom',
                                   img_size=img_size, patch_size=patch_size,
                                   batch=batch_size, dtype=dtype, cp=cp, mode=mode, model=name,
                                   seconds=r['median'], spread=r['spread'], times=r['times'],
                                   img_per_s=batch_size / r['median'],
                                   tflops=flops / r['median'] / 1e12,
                                   mfu=flops / r['median'] / peaks[dtype],
                                   act_mib=acts.get(name.replace(' compiled', ''), 0) / 2**20,
                                   peak_mib=None, max_abs_diff=diffs.get(name))
                        if device == 'cuda':
                            row['peak_mib'] = peak_memory(steps[name], device) / 2**20
                        rows.append(row)
                        log(_row_line(row))
            del models
    return rows, peaks


def _row_line(r):
    return (f"{r['arch']} {r['dtype']} cp={r['cp']} {r['mode']:7s} {r['model']:20s} "
            f"{r['img_per_s']:8.2f} img/s (+-{100 * r['spread']:.0f}%)")


def markdown_table(rows: List[dict], peaks: Dict[str, float], device: str) -> str:
    """Rows grouped by setting; ``vs best other`` = EVAViT throughput / the faster of the
    other two at the same setting (> 1 means EVAViT is faster), from the medians; ``paired``
    = the median over rounds of (other's time / EVAViT's time) in the same round, per other
    model (see ``paired_speedup``): the figure to read on a noisy machine."""
    lines = [f'Device: {device}; measured matmul peak: ' +
             ', '.join(f'{k} {v / 1e12:.2f} TFLOP/s' for k, v in peaks.items()), '',
             '| arch | dtype | ckpt | mode | model | img/s | spread | vs best other | paired | '
             'TFLOP/s | of peak | act. MiB | peak MiB | max abs diff |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    groups = {}
    for r in rows:
        groups.setdefault((r['arch'], r['dtype'], r['cp'], r['mode']), []).append(r)
    for key, rs in groups.items():
        for r in rs:
            others = [o['img_per_s'] for o in rs if not o['model'].startswith('EVAViT')]
            ratio = paired = ''
            if r['model'].startswith('EVAViT') and others:
                ratio = f"{r['img_per_s'] / max(others):.2f}x"
                paired = ', '.join(
                    f"{o['model'].split()[0]} {paired_speedup(o['times'], r['times']):.2f}x"
                    for o in rs if not o['model'].startswith('EVAViT'))
            peak = f"{r['peak_mib']:.0f}" if r['peak_mib'] is not None else 'n/a'
            diff = f"{r['max_abs_diff']:.1e}" if r['max_abs_diff'] is not None else ''
            lines.append(
                f"| {r['arch']}/{r['patch_size']}@{r['img_size']} b{r['batch']} | {r['dtype']} "
                f"| {'yes' if r['cp'] else 'no'} | {r['mode']} | {r['model']} | "
                f"{r['img_per_s']:.2f} | {100 * r['spread']:.0f}% | {ratio} | {paired} | "
                f"{r['tflops']:.3f} | {100 * r['mfu']:.0f}% | {r['act_mib']:.1f} | {peak} | "
                f"{diff} |")
    return '\n'.join(lines)


# ------------------------------------------------------------------ window vs global attention
def window_vs_global(arch='base', img_size: int = 1024, patch_size: int = 16,
                     window_size: int = 16, global_every: int = 4, batch_size: int = 1,
                     use_rel_pos: bool = True, rounds: int = 3, device: str = 'cpu',
                     methods: Sequence[str] = ('auto', 'dense'),
                     log: Callable[[str], None] = print) -> dict:
    """ViTDet detection mode at ``img_size``: forward time of a window block against a
    global block (both with decomposed rel-pos, as EVA-01 det), for the attention sub-layer
    alone (MLP replaced by a pass-through) and the whole block, on each attention
    ``method`` (``auto``: the bounded kernel, ``dense``: the materialised-mask path); the
    backbone ratio follows from one global block in every ``global_every``."""
    from projects.eva.models.attention import attention_method
    from projects.eva.models.eva_vit import Block
    a = resolve_arch(arch)
    grid = (img_size // patch_size, img_size // patch_size)
    x = torch.randn(batch_size, grid[0] * grid[1], a['embed_dims'], device=device)
    blocks = {}
    for kind, win in (('window', window_size), ('global', 0)):
        blk = Block(a['embed_dims'], a['num_heads'], a['feedforward_channels'],
                    window_size=win, rel_pos_size=grid if use_rel_pos else None).to(device)
        blocks[kind] = blk.eval()
    results = {}
    zero = _ZeroMlp()
    for part in ('attention', 'block'):
        steps = {}
        for kind, blk in blocks.items():
            for method in methods:
                def step(blk=blk, method=method):
                    saved = blk.mlp
                    if part == 'attention':
                        blk.mlp = zero
                    try:
                        with torch.no_grad(), attention_method(method):
                            blk(x, grid)
                    finally:
                        blk.mlp = saved
                steps[(kind, method)] = step
        res = time_interleaved(steps, rounds, 1, device)
        for (kind, method), r in res.items():
            results.setdefault(method, {}).setdefault(part, {})[kind] = r['median']
        results[part + '_spread'] = max(v['spread'] for v in res.values())
        for method in methods:
            t = results[method][part]
            t['ratio'] = t['window'] / t['global']
            log(f"{part} [{method}]: window {t['window']:.3f}s global {t['global']:.3f}s "
                f"ratio {t['ratio']:.3f}")
    n = a['num_layers']
    n_global = n // global_every
    for method in methods:
        t = results[method]['block']
        results[method]['backbone'] = (n - n_global) * t['window'] + n_global * t['global']
        results[method]['backbone_ratio'] = results[method]['backbone'] / (n * t['global'])
    return results


def window_vs_global_table(r: dict, methods: Sequence[str] = ('auto', 'dense')) -> str:
    lines = ['| part | method | window s | global s | window / global |',
             '|---|---|---|---|---|']
    for part in ('attention', 'block'):
        for m in methods:
            t = r[m][part]
            lines.append(f"| {part} | {m} | {t['window']:.3f} | {t['global']:.3f} | "
                         f"{t['ratio']:.3f} |")
    for m in methods:
        lines.append(f"| backbone (1 global block in 4) | {m} | | "
                     f"{r[m]['backbone']:.3f} (sum) | {r[m]['backbone_ratio']:.3f} |")
    if 'auto' in methods and 'dense' in methods:
        lines.append(f"| backbone, bounded kernel / dense path | | | "
                     f"{r['auto']['backbone'] / r['dense']['backbone']:.3f} | |")
    lines.append(f"\nlargest spread over the rounds: {100 * r['block_spread']:.0f}%")
    return '\n'.join(lines)


class _ZeroMlp(nn.Module):
    """Stands in for the MLP so a block times its attention sub-layer only."""

    def forward(self, x):
        return torch.zeros_like(x)

# ------------------------------------------------------------------ command line
def parse_args(argv=None):
    p = argparse.ArgumentParser(description='EVAViT vs timm Eva vs mmpretrain BEiTViT')
    p.add_argument('--archs', nargs='+', default=['base', 'large'],
                   help='tiny/small/base/large/giant, or W,L,H,F for a custom arch')
    p.add_argument('--img-size', type=int, default=224)
    p.add_argument('--patch-size', type=int, default=14)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--dtypes', nargs='+', default=['fp32', 'bf16'],
                   choices=['fp32', 'bf16', 'fp16'])
    p.add_argument('--ckpt', default='both', choices=['no', 'yes', 'both'],
                   help='activation checkpointing')
    p.add_argument('--modes', nargs='+', default=['fwd', 'fwd+bwd'], choices=['fwd', 'fwd+bwd'])
    p.add_argument('--models', nargs='+', default=list(MODEL_NAMES), choices=MODEL_NAMES)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument('--compile', action='store_true', help='also time torch.compile(EVAViT)')
    p.add_argument('--window-vs-global', action='store_true',
                   help='also time ViTDet window vs global attention (base/16 @1024)')
    p.add_argument('--window-arch', default='base')
    p.add_argument('--out', help='also write the markdown to this file')
    return p.parse_args(argv)


def _arch(s):
    if ',' in s:
        w, layers, heads, ffn = (int(v) for v in s.split(','))
        return dict(embed_dims=w, num_layers=layers, num_heads=heads, feedforward_channels=ffn)
    return s


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cps = {'no': (False, ), 'yes': (True, ), 'both': (False, True)}[args.ckpt]
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    rows, peaks = run_benchmark([_arch(a) for a in args.archs], args.img_size, args.patch_size,
                                args.batch, args.dtypes, cps, args.modes, args.device,
                                args.rounds, args.warmup, args.models, args.compile, log)
    text = markdown_table(rows, peaks, args.device)
    if args.window_vs_global:
        r = window_vs_global(_arch(args.window_arch), rounds=args.rounds, device=args.device,
                             log=log)
        text += ('\n\nViTDet mode, 1024x1024, patch 16, window 16 vs global (rel-pos on), '
                 'forward, batch 1:\n\n' + window_vs_global_table(r))
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    return rows


if __name__ == '__main__':
    main()
