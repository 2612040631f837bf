"""Measurement utilities shared by the benchmarks and the memory estimate: saved-activation
bytes (works on ``meta``), interleaved timing (ratios under a shared machine's load), the
measured matmul peak, CUDA peak memory and CPU peak RSS of a subprocess."""
import contextlib
import statistics
import time
from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn as nn


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


def paired_speedup(times: Sequence[float], ref_times: Sequence[float]) -> float:
    """How many times faster ``ref`` ran than the other model, as the median over rounds of
    ``time / ref_time`` in the same round. On a shared machine whose speed swings between
    steps (2x on this project's CPU VMs) this is steadier than the ratio of the medians,
    because the two steps of one round run back to back under the same load."""
    if len(times) != len(ref_times) or not times:
        raise ValueError(f'need the same non-zero number of rounds, got {len(times)} and '
                         f'{len(ref_times)}')
    return statistics.median(t / r for t, r in zip(times, ref_times))


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


def current_rss() -> int:
    """Resident bytes of this process now (Linux ``/proc/self/statm``)."""
    import os
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def peak_rss() -> int:
    """High-water resident bytes of this process (``VmHWM`` in ``/proc/self/status``).

    Not ``ru_maxrss``: Linux carries that across ``execve``, so a fresh subprocess started by
    a parent holding 5 GiB reports a 5 GiB peak whatever it does (measured: 5471 MiB for a
    step whose own peak is 493 MiB)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (``/proc/self/clear_refs`` = 5, Linux >= 4.0), so a
    peak is measured from now on, in any process. False where the kernel does not allow it."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def extra_peak_rss(step: Callable[[], None]) -> int:
    """Peak resident bytes ``step`` adds over what the process holds before it. The
    high-water mark is reset first where Linux allows it; otherwise this is meaningful only
    in a fresh process whose earlier peak is below the step's (glibc returns large blocks to
    the OS, so the RSS follows torch's CPU allocations)."""
    import gc
    gc.collect()
    reset_peak_rss()
    before = current_rss()
    step()
    return peak_rss() - before
