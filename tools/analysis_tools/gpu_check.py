"""The device check behind ``gpu_check.sh``: ONE markdown table for a lent CUDA machine.

    python tools/analysis_tools/gpu_check.py [--out work_dirs/gpu_check/gpu_check.md]
        [--budget 420] [--sections correctness speed mim memory] [--dry-run]

Sections (each case guarded: an exception or its time budget becomes an ``error`` row and
the rest of the table is still written; the file is rewritten after every row):

- ``correctness``: ``EVAViT`` forward + backward on CUDA against the same weights on CPU in
  fp32 (the reference): CUDA fp32 (TF32 off) and CUDA bf16 autocast, relative L2 error of the
  output and of all gradients (parameters + input) against :data:`TOLERANCE`; the CPU's own
  bf16 error is shown beside it as the yardstick. Cases: the EVA-01 g layout (with and without
  activation checkpointing), EVA-02 B and L with RoPE, ViTDet window + global blocks with
  decomposed rel-pos in the ``fold`` and the ``chunk`` kernel, the BEiT-table variant, video
  mode; full widths at reduced depth. SDPA's kernel is recorded per case (the aten ops seen in
  forward and backward; SDPA calls that reached none of them ran the math kernel).
- ``speed``: the backbone table of ``benchmark_backbone.py`` (EVAViT vs timm ``Eva``, same
  weights, bf16, batch 32, B/L/g at 224/14, with and without activation checkpointing, SDPA
  limited to its fused kernels), EVAViT's paired speed-up over timm against >= 1.00x.
- ``mim``: the ViT-g/14 MIM training step of the real config (student + frozen CLIP-L/14
  teacher, AdamW, bf16; ``gpu_benchmark.mim_results``): images/s and MFU against the measured
  bf16 matmul peak, target >= 45 % without checkpointing.
- ``memory``: measured CUDA peak of a training step (second step: optimizer states exist)
  against ``projects.eva.analysis.memory``'s estimate, target within 10 %: the g/14 MIM step
  (``estimate_config_memory``), the EVA-02-L IN-1K fine-tune at 448 (``estimate_config_memory``
  on the real config, its ImageClassifier built and stepped), the EVA-01 detection backbone at
  1280 (the config's ``EVAViT``, activations from ``backbone_activation_bytes``; the detector's
  heads need mmcv's compiled ops, absent on the lent machine).

Time: ``--budget`` seconds for all sections; each section gets a share of what is left
(:data:`SHARES`) and a case that would not fit by its FLOP estimate is skipped with a row
saying so. ``--dry-run`` runs every section on CPU at toy sizes (same code, same configs with
the architecture shrunk): the numbers mean nothing, the code path is tested.
"""
import argparse
import contextlib
import copy
import datetime
import gc
import os
import os.path as osp
import signal
import sys
import time

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import torch  # noqa: E402

from projects.eva import compat  # noqa: E402

compat.apply()  # the pinned stack's fixes, before mmengine.runner is imported

SECTIONS = ('correctness', 'speed', 'mim', 'memory')
# share of the remaining budget each section may spend (unspent time rolls over)
SHARES = dict(correctness=0.25, speed=0.3, mim=0.15, memory=0.3)
# Relative L2 error (||run - cpu_fp32|| / ||cpu_fp32||) of the output and of each gradient
# tensor, against the CPU fp32 run of the same weights. fp32 (TF32 off): every tensor within
# TOLERANCE['fp32']. bf16 autocast: every tensor within BF16_FACTOR x the CPU's own bf16
# error of that tensor + TOLERANCE['bf16'], since bf16's error depends on the tensor (at full
# width on CPU: 1e-2 for most, 8e-2 for EVA-02-L's and 2e-1 for the ViTDet case's LayerNorm
# bias gradients); a 10 % error in the bf16 attention kernel still fails (the tests).
TOLERANCE = dict(fp32=1e-4, bf16=2e-2)
BF16_FACTOR = 3
TARGETS = dict(speedup=1.0, mfu=0.45, memory=0.10)
# FLOP/s assumed when deciding whether a case fits its budget: 30 % of the measured peak
PLANNING_MFU = 0.3
CONFIGS = dict(
    mim='configs/pretrain/eva-mim_vit-g-p14_128xb32-150e_merged30m.py',
    cls='configs/classification/eva02-l-p14_32xb32-30e_in1k-448px.py',
    det='configs/detection/cascade-mask-rcnn_eva-g-p16_lsj-1280_64xb1-45k_coco-det.py')
DRY_MIM_CONFIG = 'configs/demo/eva-mim_vit-tiny-p14_1xb32-8e_shapes.py'
HEADER = ['| section | case | setting | measured | target | verdict | detail |',
          '|---|---|---|---|---|---|---|']


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='work_dirs/gpu_check/gpu_check.md')
    p.add_argument('--budget', type=float, default=420., help='seconds for all sections')
    p.add_argument('--sections', nargs='+', default=list(SECTIONS), choices=SECTIONS)
    p.add_argument('--archs', nargs='+', default=['base', 'large', 'giant'])
    p.add_argument('--batch', type=int, default=32, help='backbone table and MIM batch')
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--dry-run', action='store_true', help='CPU, toy sizes: checks the code path')
    args = p.parse_args(argv)
    if args.dry_run:
        args.archs, args.batch, args.steps, args.warmup = ['48,2,3,96'], 2, 1, 1
    return args


# ---------------------------------------------------------------- the table and its guards
class Table:
    """Rows of the one table, written to ``path`` after every row (a kill keeps them)."""

    def __init__(self, path, preamble):
        self.path, self.preamble, self.rows = path, preamble, []
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        self.write()

    def add(self, section, case, setting='', measured='', target='', verdict='', detail=''):
        cells = [section, case, setting, measured, target, verdict, detail]
        line = '| ' + ' | '.join(str(c).replace('|', '/').replace('\n', ' ') for c in cells) + ' |'
        self.rows.append(line)
        print(line, file=sys.stderr, flush=True)
        self.write()

    def text(self):
        return '\n'.join(self.preamble + [''] + HEADER + self.rows) + '\n'

    def write(self):
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as f:
            f.write(self.text())
        os.replace(tmp, self.path)


class CaseTimeout(Exception):
    pass


class Clock:
    """The overall deadline and each section's share of what is left."""

    def __init__(self, budget, sections):
        self.deadline = time.monotonic() + budget
        self.pending = list(sections)
        self.section_end = self.deadline

    def start(self, section):
        left = self.deadline - time.monotonic()
        share = SHARES[section] / sum(SHARES[s] for s in self.pending)
        self.pending.remove(section)
        self.section_end = time.monotonic() + max(left, 0) * (share if self.pending else 1)
        return self.section_end - time.monotonic()

    def left(self):
        return self.section_end - time.monotonic()


@contextlib.contextmanager
def guarded(table, clock, section, case, setting=''):
    """Run one case under the section's remaining time (SIGALRM); an exception or the alarm
    becomes an ``error`` row. Memory is released afterwards either way."""
    left = clock.left()
    if left <= 1:
        table.add(section, case, setting, 'not run', '', 'skipped',
                  'the section\'s time budget is spent')
        yield False
        return

    def on_alarm(signum, frame):
        raise CaseTimeout(f'over the {left:.0f} s left in the {section} budget')

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, left)
    try:
        yield True
    except Exception as e:  # noqa: BLE001  (one failure must not lose the table)
        signal.setitimer(signal.ITIMER_REAL, 0)
        msg = f'{type(e).__name__}: {e}'.splitlines()[0][:300]
        table.add(section, case, setting, msg, '', 'error', '')
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        release()


def release():
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def fits(table, clock, section, case, seconds, setting=''):
    """False (and a row) when the FLOP-based estimate of a case exceeds the time left."""
    if seconds <= clock.left():
        return True
    table.add(section, case, setting, 'not run', '', 'skipped',
              f'estimated {seconds:.0f} s > {max(clock.left(), 0):.0f} s left in the budget')
    return False


def device_of(args):
    if args.dry_run:
        return 'cpu'
    if not torch.cuda.is_available():
        raise SystemExit('gpu_check needs a CUDA GPU (use --dry-run to check it on CPU)')
    return 'cuda'


def sync(device):
    if device == 'cuda':
        torch.cuda.synchronize()


@contextlib.contextmanager
def no_tf32():
    """fp32 means fp32: cuDNN's convolutions take TF32 by default (the patch embedding)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def fmt_err(v):
    return f'{v:.1e}'


# ---------------------------------------------------------------- correctness
def toy_arch(arch):
    """The arch's structure (MLP type, sub-LN, RoPE) at toy width and depth (dry run)."""
    from projects.eva.models.eva_vit import parse_arch
    a = dict(parse_arch(arch))
    a.update(embed_dims=64, num_layers=2, num_heads=2, feedforward_channels=128)
    return a


def depth(arch, layers):
    from projects.eva.models.eva_vit import parse_arch
    a = dict(parse_arch(arch))
    a['num_layers'] = layers
    return a


def correctness_cases(dry):
    """(name, EVAViT kwargs, input shape, forced attention method). Full widths at 2 blocks
    (dry run: toy width); the det cases use a grid the 14-token window does not divide, so
    the window padding runs too."""
    arch = toy_arch if dry else (lambda a: depth(a, 2))
    s = (lambda full, toy: toy if dry else full)
    b = 2
    eva01 = dict(arch=arch('giant'), fp32_attn_and_norm=True, init_std=0.02)
    det = dict(arch=arch('base'), patch_size=16, img_size=s(320, 96), pos_embed_size=224,
               out_type='featmap', final_norm=False, with_cls_token=False,
               window_size=s(14, 4), global_block_indices=(1, ), use_rel_pos=True)
    return [
        ('EVA-01 g layout (40 -> 2 blocks)', dict(eva01, img_size=s(224, 56)),
         (b, 3, s(224, 56), s(224, 56)), None),
        ('EVA-01 g layout, activation checkpointing',
         dict(eva01, img_size=s(224, 56), with_cp=True), (b, 3, s(224, 56), s(224, 56)), None),
        ('EVA-02-B, RoPE, sub-LN, SwiGLU', dict(arch=arch('eva02-base'), img_size=s(224, 56)),
         (b, 3, s(224, 56), s(224, 56)), None),
        ('EVA-02-L, RoPE at 448', dict(arch=arch('eva02-large'), img_size=s(448, 84)),
         (b, 3, s(448, 84), s(448, 84)), None),
        ('ViTDet window + global, decomposed rel-pos, fold kernel', det,
         (b, 3, s(320, 96), s(320, 96)), 'fold'),
        ('ViTDet window + global, decomposed rel-pos, chunk kernel', det,
         (b, 3, s(320, 96), s(320, 96)), 'chunk'),
        ('BEiT-table variant (seg B: rel-pos bias table, layer scale)',
         dict(arch=arch('giant'), patch_size=16, img_size=s(224, 64), use_rel_pos_bias=True,
              layer_scale_init_value=1.0, fp32_attn_and_norm=True),
         (b, 3, s(224, 64), s(224, 64)), None),
        ('video mode (EVA-01 g layout, 4 frames)',
         dict(eva01, img_size=s(112, 28), num_frames=s(4, 2)),
         (b, 3, s(4, 2), s(112, 28), s(112, 28)), None),
    ]


class SdpaKernels:
    """The SDPA kernels run inside the block: aten ops seen by a dispatch mode (forward and,
    through autograd's thread-local state, backward) and the number of SDPA calls; a call
    that reached no fused op ran the math kernel."""

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode
        import torch.nn.functional as F
        rec = self
        self.ops, self.calls, self._F = {}, 0, F

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                name = func.__name__.split('.')[0]
                if 'scaled_dot_product' in name:
                    rec.ops[name] = rec.ops.get(name, 0) + 1
                return func(*args, **(kwargs or {}))

        self.mode = _Mode()

    def __enter__(self):
        self._orig = self._F.scaled_dot_product_attention

        def counted(*a, **k):
            self.calls += 1
            return self._orig(*a, **k)
        self._F.scaled_dot_product_attention = counted
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        self._F.scaled_dot_product_attention = self._orig
        return self.mode.__exit__(*exc)

    def summary(self):
        short = {'_scaled_dot_product_flash_attention': 'flash',
                 '_scaled_dot_product_efficient_attention': 'efficient',
                 '_scaled_dot_product_cudnn_attention': 'cudnn',
                 '_scaled_dot_product_flash_attention_for_cpu': 'cpu-flash'}
        fwd = {short.get(k, k): v for k, v in self.ops.items() if not k.endswith('backward')}
        bwd = {short.get(k[:-len('_backward')], k): v for k, v in self.ops.items()
               if k.endswith('backward')}
        math = self.calls - sum(fwd.values())
        if math > 0:
            fwd['math'] = math
        parts = [f"fwd {'+'.join(f'{k} x{v}' for k, v in fwd.items()) or 'no SDPA call'}",
                 f"bwd {'+'.join(f'{k} x{v}' for k, v in bwd.items()) or 'no SDPA op'}"]
        return 'SDPA ' + ', '.join(parts)


def fwd_bwd(model, x, w, device, dtype, record=False):
    """``{'output': ..., 'input': grad, param name: grad}`` of ``sum(out * w)`` in fp32 or
    bf16 autocast, as fp32 CPU tensors, and (with ``record``) the SDPA kernels used."""
    from projects.eva.analysis.measure import autocast_ctx
    model.zero_grad(set_to_none=True)
    x = x.detach().clone().to(device).requires_grad_(True)  # a fresh leaf: no stale grad
    kernels = SdpaKernels() if record else contextlib.nullcontext()
    tf32 = no_tf32() if dtype == 'fp32' else contextlib.nullcontext()
    with tf32, kernels:
        with autocast_ctx(device, dtype):
            out = model(x)
        out = out[-1] if isinstance(out, (tuple, list)) else out
        (out.float() * w.to(device)).sum().backward()
    sync(device)
    res = {'output': out, 'input': x.grad}
    res.update((n, p.grad) for n, p in model.named_parameters() if p.grad is not None)
    res = {n: t.detach().float().cpu() for n, t in res.items()}
    return res, (kernels.summary() if record else '')


def rel_err(a, ref):
    return ((a - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def tensor_errs(res, ref):
    """Relative L2 error of every tensor (output, each gradient) against the reference: per
    tensor, so an attention kernel's error is not hidden behind a larger gradient."""
    if res.keys() != ref.keys():
        raise RuntimeError(f'the runs differ in which tensors have a gradient: '
                           f'{sorted(set(res) ^ set(ref))}')
    return {n: rel_err(res[n], ref[n]) for n in ref}


def judge(errs, dtype, cpu_bf16=None):
    """(verdict, the tensor closest to its limit, its limit). fp32: every tensor within
    TOLERANCE['fp32']. bf16: every tensor within ``BF16_FACTOR`` x the CPU's own bf16 error
    of that tensor + TOLERANCE['bf16'] (bf16's error varies by tensor: a LayerNorm bias's
    gradient, a sum over tokens, reaches 0.2 on CPU at full width)."""
    if dtype == 'fp32':
        limits = {n: TOLERANCE['fp32'] for n in errs}
    else:
        limits = {n: BF16_FACTOR * cpu_bf16[n] + TOLERANCE['bf16'] for n in errs}
    name = max(errs, key=lambda n: errs[n] / limits[n])
    return ('pass' if errs[name] <= limits[name] else 'FAIL'), name, limits[name]


def correctness_case(name, kwargs, shape, method, device):
    """Per dtype: (errors of the device run, the device's SDPA kernels), and the CPU's own
    bf16 errors; all against the CPU fp32 run of the same weights and input."""
    from projects.eva.models.attention import attention_method
    from projects.eva.models.eva_vit import EVAViT
    torch.manual_seed(0)
    model = EVAViT(**kwargs)
    model.init_weights()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-zero rel-pos tables, biases, layer scales: every path counts
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
    model.train()
    x = torch.randn(*shape, generator=g)
    with attention_method(method):
        with torch.no_grad():
            out = model(x)
        out = out[-1] if isinstance(out, (tuple, list)) else out
        w = torch.randn(out.shape, generator=g)
        ref, _ = fwd_bwd(model, x, w, 'cpu', 'fp32')
        cpu_bf16 = tensor_errs(fwd_bwd(model, x, w, 'cpu', 'bf16')[0], ref)
        dev = copy.deepcopy(model).to(device)
        res = {}
        for dtype in ('fp32', 'bf16'):
            run, kernels = fwd_bwd(dev, x, w, device, dtype, record=True)
            res[dtype] = (tensor_errs(run, ref), kernels)
    return res, cpu_bf16


def correctness_section(args, device, table, clock):
    for name, kwargs, shape, method in correctness_cases(args.dry_run):
        setting = (f"b{shape[0]} {'x'.join(map(str, shape[2:]))}"
                   + (f', attention {method}' if method else ''))
        with guarded(table, clock, 'correctness', name, setting) as ok:
            if not ok:
                continue
            res, cpu_bf16 = correctness_case(name, kwargs, shape, method, device)
            for dtype, (errs, kernels) in res.items():
                verdict, tightest, limit = judge(errs, dtype, cpu_bf16)
                grads = {n: e for n, e in errs.items() if n != 'output'}
                worst = max(grads, key=grads.get)
                target = (f"<= {fmt_err(TOLERANCE['fp32'])} per tensor" if dtype == 'fp32'
                          else f"<= {BF16_FACTOR:g} x CPU bf16 + {fmt_err(TOLERANCE['bf16'])} "
                               'per tensor')
                detail = (f'closest to its limit: {tightest} {fmt_err(errs[tightest])} '
                          f'(limit {fmt_err(limit)}'
                          + (f', CPU bf16 {fmt_err(cpu_bf16[tightest])}' if dtype == 'bf16'
                             else '') + f'); {kernels}')
                table.add('correctness', name, f'{setting}, {device} {dtype} vs CPU fp32',
                          f"out {fmt_err(errs['output'])}, worst grad {fmt_err(grads[worst])} "
                          f'({worst}) (rel. L2)', target, verdict, detail)


# ---------------------------------------------------------------- speed
def speed_section(args, device, table, clock, peak):
    import benchmark_backbone as bench
    from gpu_benchmark import bench_arch, fused_sdpa
    from projects.eva.analysis.flops import vit_flops
    from projects.eva.analysis.measure import paired_speedup
    names = ('EVAViT', 'timm Eva')
    for arch_name in args.archs:
        arch = bench_arch(arch_name)
        a = bench.resolve_arch(arch)
        label = arch_name if isinstance(arch, str) else 'toy'
        fwd = vit_flops(a, 224, 14) * args.batch
        # 2 models x 2 settings x (fwd + fwd+bwd x ~3.5) x (warmup + rounds + peak) + fp32
        est = 2 * 2 * 4.5 * (args.warmup + args.steps + 2) * fwd / (PLANNING_MFU * peak)
        case = f'EVAViT vs timm Eva, {label}/14@224'
        if not fits(table, clock, 'speed', case, est):
            continue
        with guarded(table, clock, 'speed', case) as ok:
            if not ok:
                continue
            with fused_sdpa(device):
                rows, _ = bench.run_benchmark(
                    [arch], 224, 14, args.batch, ['bf16'], (False, True), ('fwd', 'fwd+bwd'),
                    device, args.steps, args.warmup, names=names,
                    log=lambda s: print(s, file=sys.stderr, flush=True))
            groups = {}
            for r in rows:
                groups.setdefault((r['cp'], r['mode']), {})[r['model']] = r
            for (cp, mode), g in groups.items():
                eva, timm = g['EVAViT'], g['timm Eva']
                ratio = paired_speedup(timm['times'], eva['times'])
                verdict = 'pass' if ratio >= TARGETS['speedup'] else 'MISS'
                peak_mib = lambda r: ('' if r['peak_mib'] is None  # noqa: E731
                                      else f", peak {r['peak_mib'] / 1024:.1f} GiB")
                table.add('speed', f'backbone {label}/14@224',
                          f"b{args.batch} bf16 {'ckpt' if cp else 'no ckpt'} {mode}",
                          f"EVAViT {eva['img_per_s']:.1f} img/s, timm {timm['img_per_s']:.1f} "
                          f"img/s: {ratio:.2f}x", f">= {TARGETS['speedup']:.2f}x", verdict,
                          f"EVAViT {eva['tflops']:.0f} TFLOP/s "
                          f"({100 * eva['tflops'] * 1e12 / peak:.0f}% of the measured peak)"
                          f"{peak_mib(eva)}; timm {timm['tflops']:.0f} TFLOP/s"
                          f"{peak_mib(timm)}; max abs diff fp32 {eva_diff(timm)}")


def eva_diff(r):
    return '' if r['max_abs_diff'] is None else f"{r['max_abs_diff']:.1e}"


# ---------------------------------------------------------------- MIM step
def mim_path(args):
    return DRY_MIM_CONFIG if args.dry_run else CONFIGS['mim']


def mim_section(args, device, table, clock, peak, state):
    from gpu_benchmark import mim_results
    path = mim_path(args)
    case = 'ViT-g/14 MIM step, student + frozen CLIP-L/14 teacher'
    from projects.eva.analysis.flops import vit_flops
    from projects.eva.models.eva_vit import ARCH_ZOO
    # student (g) fwd + bwd (3x its forward) + teacher (L/14) fwd, per image at 224
    per_img = 0 if args.dry_run else (3 * vit_flops(ARCH_ZOO['giant'], 224, 14)
                                      + vit_flops(ARCH_ZOO['large'], 224, 14))
    est = 2 * (args.warmup + args.steps + 1) * per_img * args.batch * 1.3 / (PLANNING_MFU * peak)
    if not fits(table, clock, 'mim', case, est):
        return
    with guarded(table, clock, 'mim', case) as ok:
        if not ok:
            return
        results = mim_results(path, args.batch, args.steps, args.warmup, device)
        state['mim'] = results
        for r in results:
            tflops = r['flops'] / r['seconds'] / 1e12
            mfu = r['flops'] / r['seconds'] / peak
            target = '' if r['cp'] else f">= {100 * TARGETS['mfu']:.0f}% MFU"
            verdict = '' if r['cp'] else ('pass' if mfu >= TARGETS['mfu'] else 'MISS')
            mem = ('' if r['peak_bytes'] is None
                   else f", peak {r['peak_bytes'] / 2**30:.1f} GiB")
            table.add('mim', case, f"{osp.basename(path)} b{r['batch']} bf16 "
                      f"{'ckpt' if r['cp'] else 'no ckpt'}",
                      f"{r['batch'] / r['seconds']:.1f} img/s, {tflops:.0f} TFLOP/s, "
                      f"MFU {100 * mfu:.1f}%", target, verdict,
                      f"{r['seconds']:.3f} s/step, {r['flops'] / 1e12:.1f} TFLOP/step "
                      f"(torch FLOP counter; the ckpt row counts no recompute){mem}")


# ---------------------------------------------------------------- memory
def _cfg(path):
    from mmengine.config import Config
    return Config.fromfile(osp.join(ROOT, path))


def gib(v):
    """GiB with two decimals; MiB below 0.1 GiB (toy sizes, small parts)."""
    return f'{v:.2f} GiB' if v >= 0.1 else f'{v * 1024:.3g} MiB'


def memory_row(table, case, setting, measured, estimate, detail):
    if measured is None:  # CPU dry run: no CUDA peak to compare
        table.add('memory', case, setting, f'estimate {gib(estimate)} (no CUDA peak on CPU)',
                  f"within {100 * TARGETS['memory']:.0f}%", '', detail)
        return
    ratio = measured / estimate
    verdict = 'pass' if abs(ratio - 1) <= TARGETS['memory'] else 'MISS'
    table.add('memory', case, setting, f'measured {gib(measured)}, estimate {gib(estimate)} '
              f'({ratio:.2f}x)', f"within {100 * TARGETS['memory']:.0f}%", verdict, detail)


def train_peak(step, device, warmup=1):
    """CUDA peak bytes of ``step`` after ``warmup`` steps (optimizer states exist); None on
    CPU (the step still runs)."""
    for _ in range(warmup):
        step()
    sync(device)
    if device == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    step()
    sync(device)
    return torch.cuda.max_memory_allocated() / 2**30 if device == 'cuda' else None


def fit_batch(estimate_fn, batch, device):
    """The config's batch, halved until the estimate (+ 2 GiB) fits 90 % of the GPU."""
    est = estimate_fn(batch)
    if device != 'cuda':
        return batch, est
    free = torch.cuda.get_device_properties(0).total_memory / 2**30 * 0.9
    while est['total'] + 2 > free and batch > 1:
        batch //= 2
        est = estimate_fn(batch)
    return batch, est


def memory_mim(args, device, table, clock, state):
    from gpu_benchmark import mim_results
    from projects.eva.analysis.memory import estimate_config_memory
    path = mim_path(args)
    case = 'g/14 MIM step (student + teacher)'
    with guarded(table, clock, 'memory', case) as ok:
        if not ok:
            return
        results = state.get('mim') or mim_results(path, args.batch, 1, 1, device, cps=(False, ))
        r = [r for r in results if not r['cp']][0]
        est = estimate_config_memory(_cfg(path), 'train', batch=r['batch'], dtype='bf16',
                                     with_cp=False, strategy='ddp', gpus=1)
        measured = r['peak_bytes'] / 2**30 if r['peak_bytes'] is not None else None
        memory_row(table, case, f"{osp.basename(path)} b{r['batch']} bf16 no ckpt, 1 GPU "
                   'AdamW', measured, est['total'], _est_detail(est))


def _est_detail(est):
    return (f"estimate: weights {gib(est['weights'])} + grads {gib(est['grads'])} + optimizer "
            f"{gib(est['optimizer'])} + activations {gib(est['activations'])}")


def memory_cls(args, device, table, clock):
    from mmpretrain.structures import DataSample
    from projects.eva.analysis.memory import build_model, estimate_config_memory
    from projects.eva.apis.build import strip_pretrained
    case = 'EVA-02-L IN-1K fine-tune at 448'
    cfg = _cfg(CONFIGS['cls'])
    strip_pretrained(cfg.model)
    if args.dry_run:
        cfg.model.backbone.arch = toy_arch(cfg.model.backbone.arch)
        cfg.model.backbone.img_size = 56
        cfg.model.head.in_channels = 64
    size = cfg.model.backbone.img_size
    with guarded(table, clock, 'memory', case) as ok:
        if not ok:
            return
        batch, est = fit_batch(lambda b: estimate_config_memory(
            cfg, 'train', batch=b, dtype='bf16', strategy='ddp', gpus=1),
            2 if args.dry_run else cfg.train_dataloader.batch_size, device)
        with torch.device(device):
            model = build_model(cfg)
        model.train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5,
                                fused=device == 'cuda')
        x = torch.randn(batch, 3, size, size, device=device)
        samples = [DataSample().set_gt_label(i % 1000).to(device) for i in range(batch)]

        def step():
            with torch.autocast(device, dtype=torch.bfloat16):
                loss = sum(v for k, v in model.loss(x, samples).items() if 'loss' in k)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        measured = train_peak(step, device)
        memory_row(table, case, f"{osp.basename(CONFIGS['cls'])} b{batch} {size}px bf16 "
                   f"ckpt={bool(cfg.model.backbone.get('with_cp'))}, 1 GPU AdamW", measured,
                   est['total'], _est_detail(est))


def det_backbone_cfg(dry):
    from mmengine.config import Config
    # the detector's custom_imports (projects.eva.detection) import mmdet's models, which
    # need mmcv's compiled ops: only the backbone dict is read
    cfg = Config.fromfile(osp.join(ROOT, CONFIGS['det']), import_custom_modules=False)
    bb = copy.deepcopy(cfg.model.backbone.to_dict())
    bb.pop('init_cfg', None)
    if dry:
        bb.update(arch=toy_arch(bb['arch']), img_size=64, window_size=2,
                  global_block_indices=(1, ))
    return bb


def memory_det(args, device, table, clock):
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    from projects.eva.analysis.memory import (GIB, backbone_activation_bytes,
                                              model_state_bytes)
    case = 'EVA-01 detection backbone at 1280'
    with guarded(table, clock, 'memory', case) as ok:
        if not ok:
            return
        import projects.eva.models  # noqa: F401  (registers EVAViT)
        bb = det_backbone_cfg(args.dry_run)
        size = bb['img_size']
        cfg = dict(bb, type='mmpretrain.EVAViT')
        with torch.device('meta'), DefaultScope.overwrite_default_scope('mmpretrain'):
            total = sum(p.numel() for p in MODELS.build(copy.deepcopy(cfg)).parameters())
        act = backbone_activation_bytes(cfg, 1, 'bf16', img_size=size)
        states = model_state_bytes(act['params'], 'ddp-amp', 1)
        est = dict(weights=(states['params'] + 4 * (total - act['params'])) / GIB,
                   grads=states['grads'] / GIB, optimizer=states['optimizer'] / GIB,
                   activations=act['activations'] / GIB)
        est['total'] = sum(est.values())
        with torch.device(device), DefaultScope.overwrite_default_scope('mmpretrain'):
            model = MODELS.build(copy.deepcopy(cfg))
        model.train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5,
                                fused=device == 'cuda')
        x = torch.randn(1, 3, size, size, device=device)

        def step():
            with torch.autocast(device, dtype=torch.bfloat16):
                out = model(x)
            sum(o.float().mean() for o in out).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        measured = train_peak(step, device)
        memory_row(table, case, f"{osp.basename(CONFIGS['det'])} backbone only, b1 {size}px "
                   f"bf16 ckpt={bool(bb.get('with_cp'))}, 1 GPU AdamW", measured, est['total'],
                   _est_detail(est) + ' (RPN / RoI heads not built: mmcv ops)')


def memory_section(args, device, table, clock, state):
    memory_mim(args, device, table, clock, state)
    memory_cls(args, device, table, clock)
    memory_det(args, device, table, clock)


# ---------------------------------------------------------------- main
def preamble(args, device, peak):
    name = (torch.cuda.get_device_name() if device == 'cuda'
            else 'CPU (dry run: numbers meaningless)')
    cuda = f'CUDA {torch.version.cuda}; ' if device == 'cuda' else ''
    return [f'GPU check, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC: '
            f'{name}; torch {torch.__version__}; {cuda}Python {sys.version.split()[0]}; '
            f'measured bf16 matmul peak {peak / 1e12:.1f} TFLOP/s; budget {args.budget:.0f} s '
            f'for sections {", ".join(args.sections)}.',
            '', 'Command: `python tools/analysis_tools/gpu_check.py '
            + ' '.join(sys.argv[1:]) + '`']


def main(argv=None):
    args = parse_args(argv)
    device = device_of(args)
    from gpu_benchmark import PEAK_MATMUL_SIZE
    from projects.eva.analysis.measure import matmul_peak_flops
    peak = matmul_peak_flops(device, 'bf16', size=PEAK_MATMUL_SIZE[device])
    table = Table(args.out, preamble(args, device, peak))
    clock = Clock(args.budget, args.sections)
    state = {}
    t0 = time.monotonic()
    for section in SECTIONS:
        if section not in args.sections:
            continue
        left = clock.start(section)
        print(f'[gpu_check] {section}: {left:.0f} s', file=sys.stderr, flush=True)
        try:
            if section == 'correctness':
                correctness_section(args, device, table, clock)
            elif section == 'speed':
                speed_section(args, device, table, clock, peak)
            elif section == 'mim':
                mim_section(args, device, table, clock, peak, state)
            else:
                memory_section(args, device, table, clock, state)
        except Exception as e:  # noqa: BLE001  (e.g. an import failing: the rest still runs)
            table.add(section, '(section)', '', f'{type(e).__name__}: {e}'.splitlines()[0],
                      '', 'error', '')
        release()
    table.preamble.append(f'Wall time of the sections: {time.monotonic() - t0:.0f} s.')
    table.write()
    print(table.text())
    return table


if __name__ == '__main__':
    main()
