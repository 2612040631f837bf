"""Helpers shared by the demo stages (``projects/eva/demo/<stage>.py``, run by tools/demo.py)."""
import json
import os
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def config_path(name: str) -> str:
    """Absolute path of ``configs/<name>``."""
    return osp.join(ROOT, 'configs', name)


def read_scalars(work_dir: str) -> list:
    """Every logged scalar record of the newest run in ``work_dir``."""
    runs = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d, 'vis_data')))
    if not runs:
        raise FileNotFoundError(f'no run logs under {work_dir}')
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_curve(steps, values, path, title, ylabel='loss'):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    ax.plot(steps, values, lw=1.5)
    ax.set_xlabel('iteration')
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def build_runner(config: str, work_dir: str, options: dict = None, mode: str = 'train',
                 checkpoint: str = None):
    """The same Runner that tools/train.py and tools/test.py build."""
    from ..runner import build_runner as _build
    return _build(config, work_dir, cfg_options=options, mode=mode, pin_memory=False,
                  checkpoint=checkpoint)
