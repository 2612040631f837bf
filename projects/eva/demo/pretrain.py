"""Demo stage: EVA-01 MIM with a tiny student and a random tiny CLIP-architecture teacher."""
import os.path as osp
import time

from .utils import build_runner, config_path, ensure_data, plot_curve, read_scalars

# the unlabelled images of both MIM stages (EVA-01 here, EVA-02 in eva02.py)
DATA = dict(num=512, size=112, seed=0)


def make_data(data_root: str) -> str:
    """``<data_root>/mim/train``, drawn again when stale; returns ``<data_root>/mim``."""
    from . import synthetic
    root = osp.join(data_root, 'mim')
    ensure_data(root, DATA, lambda: synthetic.make_unlabeled_images(
        osp.join(root, 'train'), **DATA), [synthetic])
    return root


def run_demo_stage(work_dir: str, data_root: str) -> list:
    root = make_data(data_root)
    out = osp.join(work_dir, 'pretrain')
    t0 = time.time()
    build_runner(config_path('demo/eva-mim_vit-tiny-p14_1xb32-8e_shapes.py'), out,
                 {'train_dataloader.dataset.dataset.data_root': root}).train()
    minutes = (time.time() - t0) / 60
    records = [r for r in read_scalars(out) if 'loss' in r]
    steps, losses = [r['step'] for r in records], [r['loss'] for r in records]
    plot_curve(steps, losses, osp.join(out, 'loss_curve.png'),
               'EVA MIM demo: -cos on masked patches')
    k = max(1, len(losses) // 8)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    return [('MIM pretraining (tiny EVA student, random tiny CLIP teacher)',
             'masked-patch loss (-cos), first -> last 1/8 of logged iters',
             f'{first:.3f} -> {last:.3f}', f'{steps[-1]} iters, {minutes:.1f} min')]
