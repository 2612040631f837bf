"""CPU threads for tools/train.py, test.py and inference.py (``--threads``).

torch starts one intra-op thread per core. With dataloader workers on the same cores (or other
jobs on a shared machine), those threads wait for busy cores: on 2 cores, small models ran
~10x slower at torch's default than at one thread (docs/performance.md, README "CPU
threads"). The default leaves the workers their cores: the cores this process may use minus
the dataloader workers, at least one. On GPU torch's setting is left alone.
"""
import os
from typing import Optional

import torch


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_threads(num_workers: int = 0, cores: Optional[int] = None) -> int:
    """Intra-op threads that leave ``num_workers`` dataloader workers a core each."""
    cores = usable_cores() if cores is None else cores
    return max(1, cores - max(0, int(num_workers)))


def set_threads(threads: Optional[int], num_workers: int = 0,
                device: Optional[str] = None) -> int:
    """Apply ``--threads`` (None: :func:`default_threads` on CPU, torch's own on GPU) and
    return the number in use."""
    if threads is not None and threads < 1:
        raise ValueError(f'--threads must be >= 1, got {threads}')
    on_gpu = str(device).startswith('cuda') if device is not None \
        else torch.cuda.is_available()
    if threads is None and not on_gpu:
        threads = default_threads(num_workers)
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def loader_workers(cfg, *names: str) -> int:
    """The most ``num_workers`` of the config's dataloaders ``names`` (absent ones: 0)."""
    return max([int((cfg.get(n) or {}).get('num_workers', 0) or 0) for n in names] or [0])
