"""Side-by-side speed / memory benchmark of ``EVAViT`` against timm ``Eva`` and mmpretrain
``BEiTViT`` built at the same architecture with the *same weights*.

Timings are interleaved (one step of each model per round, median over rounds), so the
ratios see the same machine load; the spread of the rounds is reported as the noise.
Activation memory is the bytes autograd keeps for backward (saved tensors, parameters
excluded, shared storages counted once): a device-independent number that also works on
the ``meta`` device. Peak memory is reported on CUDA only.
"""
import contextlib
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from ..models.eva_vit import ARCH_ZOO, EVAViT

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
@contextlib.contextmanager
def count_saved_activations(model: Optional[nn.Module] = None):
    """Sum the bytes of tensors saved for backward inside the block (parameters excluded,
    shared storages once). Yields a dict whose ``bytes`` is filled on exit."""
    params = set()
    if model is not None:
        params = {p.untyped_storage()._cdata for p in model.parameters()}
    seen, result = set(), {'bytes': 0}

    def pack(t):
        st = t.untyped_storage()
        key = st._cdata
        if key not in seen and key not in params:
            seen.add(key)
            result['bytes'] += st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield result


def autocast_ctx(device: str, dtype: str):
    if dtype == 'fp32':
        return contextlib.nullcontext()
    return torch.autocast(device, dtype={'bf16': torch.bfloat16, 'fp16': torch.float16}[dtype])


def _sync(device):
    if device == 'cuda':
        torch.cuda.synchronize()


def make_step(model: nn.Module, x: torch.Tensor, mode: str, device: str, dtype: str
              ) -> Callable[[], None]:
    """One forward (``fwd``, no grad, eval) or forward + backward (``fwd+bwd``, train)."""
    if mode == 'fwd':
        def step():
            model.eval()
            with torch.no_grad(), autocast_ctx(device, dtype):
                model(x)
    elif mode == 'fwd+bwd':
        def step():
            model.train()
            with autocast_ctx(device, dtype):
                out = model(x)[-1]
            out.float().mean().backward()
            model.zero_grad(set_to_none=True)
    else:
        raise ValueError(f'mode must be fwd or fwd+bwd, got {mode!r}')
    return step


def time_interleaved(steps: Dict[str, Callable[[], None]], rounds: int = 5, warmup: int = 1,
                     device: str = 'cpu') -> Dict[str, dict]:
    """Run one step of each callable per round (round-robin, so load changes hit all of them
    alike); returns median seconds and the relative spread (max - min) / median per name."""
    for _ in range(warmup):
        for fn in steps.values():
            fn()
    _sync(device)
    times = {k: [] for k in steps}
    for r in range(rounds):
        order = list(steps) if r % 2 == 0 else list(steps)[::-1]  # no fixed position bias
        for name in order:
            _sync(device)
            t0 = time.perf_counter()
            steps[name]()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    out = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        out[name] = dict(median=med, spread=(max(ts) - min(ts)) / med, times=ts)
    return out


def activation_bytes(model: nn.Module, x: torch.Tensor, device: str, dtype: str) -> int:
    model.train()
    with count_saved_activations(model) as res, autocast_ctx(device, dtype):
        out = model(x)[-1]
    del out
    return res['bytes']


def peak_memory(step: Callable[[], None], device: str) -> Optional[int]:
    if device != 'cuda':
        return None
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated()


def max_abs_diff(models: Dict[str, nn.Module], x: torch.Tensor, ref: str = 'EVAViT'
                 ) -> Dict[str, float]:
    """fp32 eval outputs of every model against ``ref`` (same weights, so ~1e-6)."""
    with torch.no_grad():
        outs = {}
        for name, m in models.items():
            m.eval()
            outs[name] = m(x)[-1].float()
    return {n: (o - outs[ref]).abs().max().item() for n, o in outs.items() if n != ref}


def matmul_peak_flops(device: str = 'cpu', dtype: str = 'fp32', size: int = 2048,
                      rounds: int = 5) -> float:
    """Measured dense matmul throughput (FLOP/s) of this device: the roofline the model
    FLOP/s are compared with."""
    dt = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}[dtype]
    a = torch.randn(size, size, device=device, dtype=dt)
    b = torch.randn(size, size, device=device, dtype=dt)
    a @ b
    _sync(device)
    best = float('inf')
    for _ in range(rounds):
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * size ** 3 / best


# ------------------------------------------------------------------ the whole table
def run_benchmark(archs: Sequence[str] = ('base', ), img_size: int = 224, patch_size: int = 14,
                  batch_size: int = 8, dtypes: Sequence[str] = ('fp32', 'bf16'),
                  cps: Sequence[bool] = (False, True), modes: Sequence[str] = ('fwd', 'fwd+bwd'),
                  device: str = 'cpu', rounds: int = 5, warmup: int = 1,
                  names: Sequence[str] = MODEL_NAMES, compile_eva: bool = False,
                  log: Callable[[str], None] = print) -> List[dict]:
    """One row per (arch, dtype, checkpointing, mode, model)."""
    from .flops import vit_flops
    rows = []
    peaks = {dt: matmul_peak_flops(device, dt) for dt in dtypes}
    for arch in archs:
        a = resolve_arch(arch)
        fwd_flops = vit_flops(a, img_size, patch_size) * batch_size
        x = torch.randn(batch_size, 3, img_size, img_size, device=device)
        for cp in cps:
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
                                   seconds=r['median'], spread=r['spread'],
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
    other two at the same setting (> 1 means EVAViT is faster)."""
    lines = [f'Device: {device}; measured matmul peak: ' +
             ', '.join(f'{k} {v / 1e12:.2f} TFLOP/s' for k, v in peaks.items()), '',
             '| arch | dtype | ckpt | mode | model | img/s | spread | vs best other | '
             'TFLOP/s | of peak | act. MiB | peak MiB | max abs diff |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    groups = {}
    for r in rows:
        groups.setdefault((r['arch'], r['dtype'], r['cp'], r['mode']), []).append(r)
    for key, rs in groups.items():
        for r in rs:
            others = [o['img_per_s'] for o in rs if not o['model'].startswith('EVAViT')]
            ratio = (f"{r['img_per_s'] / max(others):.2f}x"
                     if r['model'].startswith('EVAViT') and others else '')
            peak = f"{r['peak_mib']:.0f}" if r['peak_mib'] is not None else 'n/a'
            diff = f"{r['max_abs_diff']:.1e}" if r['max_abs_diff'] is not None else ''
            lines.append(
                f"| {r['arch']}/{r['patch_size']}@{r['img_size']} b{r['batch']} | {r['dtype']} "
                f"| {'yes' if r['cp'] else 'no'} | {r['mode']} | {r['model']} | "
                f"{r['img_per_s']:.2f} | {100 * r['spread']:.0f}% | {ratio} | "
                f"{r['tflops']:.3f} | {100 * r['mfu']:.0f}% | {r['act_mib']:.1f} | {peak} | "
                f"{diff} |")
    return '\n'.join(lines)


# ------------------------------------------------------------------ window vs global attention
def window_vs_global(arch='base', img_size: int = 1024, patch_size: int = 16,
                     window_size: int = 16, global_every: int = 4, batch_size: int = 1,
                     use_rel_pos: bool = True, rounds: int = 3, device: str = 'cpu',
                     log: Callable[[str], None] = print) -> dict:
    """ViTDet detection mode at ``img_size``: forward time of a window block against a
    global block (both with decomposed rel-pos, as EVA-01 det), for the attention sub-layer
    alone (MLP replaced by a pass-through) and the whole block; the backbone ratio follows
    from one global block in every ``global_every``."""
    from ..models.eva_vit import Block
    a = resolve_arch(arch)
    grid = (img_size // patch_size, img_size // patch_size)
    x = torch.randn(batch_size, grid[0] * grid[1], a['embed_dims'], device=device)
    blocks = {}
    for kind, win in (('window', window_size), ('global', 0)):
        blk = Block(a['embed_dims'], a['num_heads'], a['feedforward_channels'],
                    window_size=win, rel_pos_size=grid if use_rel_pos else None).to(device)
        blocks[kind] = blk.eval()
    results = {}
    for part in ('attention', 'block'):
        steps = {}
        for kind, blk in blocks.items():
            if part == 'attention':
                saved, blk.mlp = blk.mlp, _ZeroMlp()
            else:
                saved = None

            def step(blk=blk):
                with torch.no_grad():
                    blk(x, grid)
            steps[kind] = (step, blk, saved)
        res = time_interleaved({k: v[0] for k, v in steps.items()}, rounds, 1, device)
        for kind, (_, blk, saved) in steps.items():
            if saved is not None:
                blk.mlp = saved
        results[part] = {k: v['median'] for k, v in res.items()}
        results[part + '_spread'] = max(v['spread'] for v in res.values())
        results[part + '_ratio'] = res['window']['median'] / res['global']['median']
        log(f"{part}: window {res['window']['median']:.3f}s global "
            f"{res['global']['median']:.3f}s ratio {results[part + '_ratio']:.3f}")
    n = a['num_layers']
    n_global = n // global_every
    t = results['block']
    results['backbone_ratio'] = ((n - n_global) * t['window'] + n_global * t['global']) / (
        n * t['global'])
    return results


class _ZeroMlp(nn.Module):
    """Stands in for the MLP so a block times its attention sub-layer only."""

    def forward(self, x):
        return torch.zeros_like(x)
