"""Memory and time of EVAViT's biased attention: the dense-mask path against the bounded
kernels of ``projects/eva/models/attention.py`` (``chunk``, ``fold``).

    python tools/analysis_tools/benchmark_attention.py --case global --grid 96 --heads 16 \
        [--level attn block] [--methods dense chunk fold] [--dtypes fp32 bf16]
        [--modes fwd fwd+bwd] [--rounds 3] [--threads 1] [--max-dense-gib 8] [--out x.md]

Cases: ``global`` (one ViTDet global block, decomposed rel-pos on a grid x grid token map),
``window`` (the windows of that map, window 16, each with its own rel-pos), ``table`` (the
BEiT relative-position table on grid x grid patches + cls, EVA-01 seg variant B).
Levels: ``attn`` (bias terms + attention, from q/k/v) or ``block`` (a whole Block,
dim = 64 x heads, bf16 through CPU autocast).

Extra peak memory is the peak RSS a single step adds, each (method, dtype, mode, level) in a
fresh subprocess; time is the median of interleaved rounds in one process. Cases whose
dense path would need more than ``--max-dense-gib`` are skipped and say so (this machine
has 23 GB shared by other jobs).
"""
import argparse
import json
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--case', default='global', choices=['global', 'window', 'table'])
    p.add_argument('--grid', type=int, default=96, help='token grid side (96 = 1536 / 16)')
    p.add_argument('--window', type=int, default=16)
    p.add_argument('--heads', type=int, default=16)
    p.add_argument('--head-dim', type=int, default=64)
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--level', nargs='+', default=['attn'], choices=['attn', 'block'])
    p.add_argument('--methods', nargs='+', default=['dense', 'chunk', 'fold'],
                   choices=['dense', 'chunk', 'fold', 'auto'])
    p.add_argument('--dtypes', nargs='+', default=['fp32', 'bf16'], choices=list(DTYPES))
    p.add_argument('--modes', nargs='+', default=['fwd', 'fwd+bwd'], choices=['fwd', 'fwd+bwd'])
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--max-dense-gib', type=float, default=8.0,
                   help='skip dense cases that would need more than this (GiB)')
    p.add_argument('--glibc-default', action='store_true',
                   help='measure with glibc\'s default malloc settings (see below)')
    p.add_argument('--no-memory', action='store_true', help='timing only')
    p.add_argument('--no-time', action='store_true', help='memory only')
    p.add_argument('--worker', help=argparse.SUPPRESS)
    p.add_argument('--out')
    return p.parse_args(argv)


def tokens(args):
    """(attention batch, grid h, grid w, N) of one attention call of the case."""
    if args.case == 'window':
        nw = (-(-args.grid // args.window)) ** 2  # windows per image, the grid padded up
        return args.batch * nw, args.window, args.window, args.window ** 2
    n = args.grid * args.grid + (args.case == 'table')
    return args.batch, args.grid, args.grid, n


def dense_mask_bytes(args, dtype):
    b, _, _, n = tokens(args)
    return b * args.heads * n * n * torch.empty(0, dtype=DTYPES[dtype]).element_size()


def build(args, level, dtype, mode, seed=0):
    """Inputs and a ``step(method)`` for one setting."""
    from projects.eva.models import attention as A
    from projects.eva.models.eva_vit import Block, beit_relative_position_index
    torch.manual_seed(seed)
    b, h, w, n = tokens(args)
    dt = DTYPES[dtype]
    grad = mode == 'fwd+bwd'
    if level == 'block':
        dim = args.heads * args.head_dim
        kw = (dict(rel_pos_bias_size=(h, w)) if args.case == 'table'
              else dict(rel_pos_size=(args.grid, args.grid), window_size=(
                  args.window if args.case == 'window' else 0)))
        blk = Block(dim, args.heads, 4 * dim, **kw)
        with torch.no_grad():
            for name, prm in blk.named_parameters():
                if 'rel_pos' in name or 'relative_position' in name:
                    prm.normal_(std=0.02)
        blk.train(grad)
        grid = args.grid
        x = torch.randn(args.batch, grid * grid + (args.case == 'table'), dim,
                        requires_grad=grad)
        hw = None if args.case == 'table' else (grid, grid)
        ctx = (torch.autocast('cpu', dtype=torch.bfloat16) if dtype == 'bf16'
               else torch.autocast('cpu', enabled=False))

        def step(method):
            with A.attention_method(method), ctx, torch.set_grad_enabled(grad):
                out = blk(x, hw)
            if grad:
                out.float().sum().backward()
                x.grad = None
                blk.zero_grad(set_to_none=True)
        return step

    d = args.head_dim
    q, k, v = (torch.randn(b, args.heads, n, d, dtype=dt, requires_grad=grad)
               for _ in range(3))
    go = torch.randn(b, args.heads, n, d, dtype=dt)
    if args.case == 'table':
        index = beit_relative_position_index(h, w).int()
        table = (torch.randn(int(index.max()) + 1, args.heads) * 0.5).to(dt).requires_grad_(grad)
        params = [q, k, v, table]

        def terms(q):
            return dict(pos_table=(table, index))
    else:
        rph = (torch.randn(2 * h - 1, d) * 0.05).to(dt).requires_grad_(grad)
        rpw = (torch.randn(2 * w - 1, d) * 0.05).to(dt).requires_grad_(grad)
        params = [q, k, v, rph, rpw]

        def terms(q):
            return dict(rel_pos=A.decomposed_rel_pos_terms(q, rph, rpw, (h, w)))

    def step(method):
        with torch.set_grad_enabled(grad):
            out = A.attention(q, k, v, method=method, **terms(q))
        if grad:
            return out, torch.autograd.grad(out, params, go)
        return out, None
    return step


def _worker(spec):
    """One memory measurement in this (fresh) process; prints JSON."""
    from projects.eva.analysis.measure import extra_peak_rss
    args = parse_args(spec['argv'])
    torch.set_num_threads(args.threads)
    step = build(args, spec['level'], spec['dtype'], spec['mode'])
    extra = extra_peak_rss(lambda: step(spec['method']))
    print(json.dumps(dict(extra=extra)))


def measure_memory(argv, level, method, dtype, mode, glibc_default=False) -> int:
    """Peak RSS a step adds, in a fresh process. By default blocks above 64 KiB are mmapped
    (``MALLOC_MMAP_THRESHOLD_``), so freed memory leaves the RSS at once: with glibc's
    dynamic threshold, the chunk kernel's many 4-20 MB blocks stay in the heap after being
    freed, and the RSS then counts them (1598 vs 143 MiB measured, docs/performance.md)."""
    import os
    spec = dict(argv=argv, level=level, method=method, dtype=dtype, mode=mode)
    env = dict(os.environ)
    if not glibc_default:
        env.setdefault('MALLOC_MMAP_THRESHOLD_', '65536')
    out = subprocess.run([sys.executable, osp.abspath(__file__), '--worker', json.dumps(spec)],
                         capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])['extra']


def max_diffs(step, methods, ref='dense'):
    """Max abs output difference and max relative gradient difference vs ``ref``."""
    out_ref, g_ref = step(ref)
    res = {}
    for m in methods:
        if m == ref:
            continue
        out, g = step(m)
        d_out = (out.float() - out_ref.float()).abs().max().item()
        d_g = None
        if g is not None:
            d_g = max(((a.float() - b.float()).abs().max() / b.float().abs().max()).item()
                      for a, b in zip(g, g_ref))
        res[m] = (d_out, d_g)
    return res


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.worker:
        return _worker(json.loads(args.worker))
    from projects.eva.analysis.measure import time_interleaved
    torch.set_num_threads(args.threads)
    methods = [m for m in args.methods if not (m == 'fold' and args.case == 'table')]
    b, h, w, n = tokens(args)
    lines = [f'case {args.case}: {b} x {args.heads} heads x {n} tokens (grid {h}x{w}), '
             f'head dim {args.head_dim}, {args.threads} thread(s)', '',
             '| level | dtype | mode | method | extra peak MiB | vs dense | time s | spread | '
             'vs dense | max abs diff out | max rel diff grads |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    rows = []
    for level in args.level:
        for dtype in args.dtypes:
            for mode in args.modes:
                # the dense path holds ~1 mask-sized tensor in a no-grad forward and ~3.5
                # when training (measured); skip what this machine cannot hold
                need = dense_mask_bytes(args, dtype) * (1.2 if mode == 'fwd' else 3.5)
                run = [m for m in methods if m != 'dense' or need <= args.max_dense_gib * 2**30]
                mem = {}
                if not args.no_memory:
                    for m in run:
                        mem[m] = measure_memory(argv, level, m, dtype, mode, args.glibc_default)
                        print(f'{level} {dtype} {mode} {m}: {mem[m] / 2**20:.0f} MiB',
                              file=sys.stderr, flush=True)
                times, diffs = {}, {}
                if not args.no_time:
                    step = build(args, level, dtype, mode)
                    if level == 'attn' and 'dense' in run:
                        diffs = max_diffs(step, run)
                    times = time_interleaved({m: (lambda m=m: step(m)) for m in run},
                                             args.rounds, 1)
                    del step
                for m in methods:
                    r = dict(level=level, dtype=dtype, mode=mode, method=m,
                             mem=mem.get(m), time=times.get(m, {}).get('median'),
                             spread=times.get(m, {}).get('spread'), diff=diffs.get(m))
                    rows.append(r)
                    lines.append(_line(r, mem.get('dense'), times.get('dense', {}).get('median'),
                                       m not in run, dense_mask_bytes(args, dtype)))
                    print(lines[-1], file=sys.stderr, flush=True)
    text = '\n'.join(lines)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    return rows


def _line(r, mem_dense, t_dense, skipped, mask_bytes):
    if skipped:
        return (f"| {r['level']} | {r['dtype']} | {r['mode']} | {r['method']} | skipped (the "
                f'mask alone is {mask_bytes / 2**30:.1f} GiB) | | | | | | |')
    f = lambda v, fmt: '' if v is None else format(v, fmt)  # noqa: E731
    mem = f(r['mem'] and r['mem'] / 2**20, '.0f')
    mem_ratio = f(r['mem'] / mem_dense if r['mem'] and mem_dense else None, '.3f')
    t_ratio = f(r['time'] / t_dense if r['time'] and t_dense else None, '.2f')
    d_out, d_g = r['diff'] if r['diff'] else (None, None)
    return (f"| {r['level']} | {r['dtype']} | {r['mode']} | {r['method']} | {mem} | "
            f"{mem_ratio} | {f(r['time'], '.3f')} | "
            f"{f(r['spread'] and 100 * r['spread'], '.0f')}{'%' if r['spread'] else ''} | "
            f"{t_ratio} | {f(d_out, '.1e')} | {f(d_g, '.1e')} |")


if __name__ == '__main__':
    main()
