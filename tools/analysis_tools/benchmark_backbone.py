"""Throughput and memory of EVAViT against timm ``Eva`` and mmpretrain ``BEiTViT``.

    python tools/analysis_tools/benchmark_backbone.py --archs base large --batch 8 \
        [--dtypes fp32 bf16] [--ckpt both] [--device cuda] [--rounds 5] [--compile]
        [--window-vs-global] [--out results.md]

All models get EVAViT's weights (outputs are compared), are built at the same architecture
and numerics, and are timed round-robin in one process so the ratios share the machine's
load; the spread column is (max - min) / median over the rounds. Prints a markdown table.
Absolute numbers only mean something on a quiet machine; ratios are what to compare.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

import projects.eva  # noqa: E402,F401
from projects.eva.analysis.benchmark import (MODEL_NAMES, markdown_table,  # noqa: E402
                                             run_benchmark, window_vs_global)


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
                 'forward, batch 1:\n\n| part | window s | global s | window / global | '
                 'spread |\n|---|---|---|---|---|\n')
        for part in ('attention', 'block'):
            text += (f"| {part} | {r[part]['window']:.3f} | {r[part]['global']:.3f} | "
                     f"{r[part + '_ratio']:.3f} | {100 * r[part + '_spread']:.0f}% |\n")
        text += f"| backbone (1 global block in 4) | | | {r['backbone_ratio']:.3f} | |\n"
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    return rows


if __name__ == '__main__':
    main()
