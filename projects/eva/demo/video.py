"""Demo stage 'video': a tiny EVA video recogniser learns the direction a shape moves in."""
import os.path as osp
import time

from .utils import build_runner, config_path, ensure_data, plot_curve, read_scalars

CONFIG = 'demo/eva-video_vit-tiny-p14_1xb16-8e_moving-shapes.py'
SPLITS = {'train': 256, 'val': 32}  # videos per class (4 classes)


def run_demo_stage(work_dir: str, data_root: str) -> list:
    import cv2

    from ..apis import video_vis
    from . import synthetic, synthetic_video
    root = osp.join(data_root, 'video')
    spec = dict(per_class=SPLITS, size=64, frames=16, seed=0, opencv=cv2.__version__)
    ensure_data(root, spec, lambda: synthetic_video.make_moving_shapes(
        root, SPLITS, size=64, frames=16, seed=0), [synthetic, synthetic_video, video_vis])
    out = osp.join(work_dir, 'video')
    opts = {'train_dataloader.dataset.dataset.ann_file': osp.join(root, 'train_list_videos.txt'),
            'train_dataloader.dataset.dataset.data_prefix.video': root}
    for loader in ('val_dataloader', 'test_dataloader'):
        opts[f'{loader}.dataset.ann_file'] = osp.join(root, 'val_list_videos.txt')
        opts[f'{loader}.dataset.data_prefix.video'] = root
    t0 = time.time()
    runner = build_runner(config_path(CONFIG), out, opts)
    runner.train()
    train_min = (time.time() - t0) / 60
    t1 = time.time()
    metrics = runner.test()  # 8 frames x 3 crops x 2 clips, softmax averaged
    test_min = (time.time() - t1) / 60
    records = [r for r in read_scalars(out) if 'loss' in r]
    plot_curve([r['step'] for r in records], [r['loss'] for r in records],
               osp.join(out, 'loss_curve.png'), 'EVA video demo: moving-shape direction')
    n_val = SPLITS['val'] * len(synthetic_video.DIRECTIONS)
    chance = 100 / len(synthetic_video.DIRECTIONS)
    return [('Video recognition (tiny EVA ViT, 8 frames, joint space-time attention)',
             f'top-1 on {n_val} held-out generated videos, 4 motion directions '
             f'(chance {chance:.0f}%), 3 crops x 2 clips',
             f'{100 * metrics["acc/top1"]:.1f}%',
             f'{runner.iter} iters, train {train_min:.1f} min + test {test_min:.1f} min')]
