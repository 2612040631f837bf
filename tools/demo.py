"""The demo: EVA's pipeline end to end on CPU in minutes, on data the project generates.

    python tools/demo.py [--work-dir work_dirs/demo] [--stages mim]

Each stage writes its data under ``data/demo/<stage>`` (once), trains with the stage's config
in ``configs/demo/`` through the same Runner as ``tools/train.py``, and adds rows to
``<work-dir>/results.md``. The MIM stage also writes ``<work-dir>/mim/loss_curve.png``.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import projects.eva  # noqa: E402,F401

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def read_scalars(work_dir: str) -> list:
    """Every logged scalar record of the newest run in ``work_dir``."""
    runs = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d, 'vis_data')))
    if not runs:
        raise FileNotFoundError(f'no run logs under {work_dir}')
    path = osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_curve(steps, values, path, title, ylabel='loss'):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    ax.plot(steps, values, lw=1.5)
    ax.set_xlabel('iteration')
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def train(config: str, work_dir: str, options: dict):
    from types import SimpleNamespace

    from projects.eva.runner import build_runner_from_args
    args = SimpleNamespace(config=config, work_dir=work_dir, cfg_options=options,
                           launcher='none', amp=False, resume=None, no_validate=False,
                           auto_scale_lr=False, no_pin_memory=True,
                           no_persistent_workers=False)
    runner = build_runner_from_args(args, mode='train')
    runner.train()
    return runner


def stage_mim(work_dir: str, data_root: str) -> list:
    from projects.eva.datasets.synthetic import make_unlabeled_images
    root = osp.join(data_root, 'mim')
    if not osp.isdir(osp.join(root, 'train')):
        make_unlabeled_images(osp.join(root, 'train'), num=512, size=112, seed=0)
    out = osp.join(work_dir, 'mim')
    t0 = time.time()
    train(osp.join(ROOT, 'configs/demo/eva-mim_vit-tiny-p14_1xb32-8e_shapes.py'), out,
          {'train_dataloader.dataset.dataset.data_root': root})
    minutes = (time.time() - t0) / 60
    records = [r for r in read_scalars(out) if 'loss' in r]
    steps, losses = [r['step'] for r in records], [r['loss'] for r in records]
    plot_curve(steps, losses, osp.join(out, 'loss_curve.png'),
               'EVA MIM demo: -cos(student, teacher) on masked patches')
    k = max(1, len(losses) // 8)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    return [('MIM pretraining (tiny EVA, random tiny CLIP teacher)',
             'masked-patch loss -cos, first -> last 1/8 of logs',
             f'{first:.3f} -> {last:.3f}', f'{steps[-1]} iters, {minutes:.1f} min')]


STAGES = {'mim': stage_mim}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/demo'))
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data/demo'))
    parser.add_argument('--stages', default=','.join(STAGES),
                        help=f'comma-separated subset of {list(STAGES)}')
    args = parser.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    rows = []
    for name in args.stages.split(','):
        if name not in STAGES:
            raise SystemExit(f'unknown stage {name!r}; choose from {list(STAGES)}')
        rows += STAGES[name](args.work_dir, args.data_root)
    table = ['| stage | metric | result | cost |', '|---|---|---|---|']
    table += [f'| {" | ".join(r)} |' for r in rows]
    text = '\n'.join(table) + '\n'
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(text)
    print('\nDemo results (also in {}):\n{}'.format(osp.join(args.work_dir, 'results.md'), text))


if __name__ == '__main__':
    main()
