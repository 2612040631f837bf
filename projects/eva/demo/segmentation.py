"""Demo stage: a tiny EVA ViT-Adapter + Mask2Former learns to segment drawn shapes on CPU.

The first validation runs on the freshly initialised model (``ValBeforeTrainHook``), the last
after training, on the same held-out split, so the row reads "untrained -> trained" mIoU.
Colour overlays of held-out images (image | ground truth | prediction) are written next to
the logs.
"""
import os
import os.path as osp
import time

import numpy as np

from .utils import build_runner, config_path, ensure_data, plot_curve, read_scalars

CONFIG = 'demo/eva-mask2former_vit-tiny-adapter-p16_1xb8-160it_shapes-seg-128.py'
DATA = dict(num_train=256, num_val=64, size=128, seed=0)


def colour_overlay(image: np.ndarray, label: np.ndarray, palette, alpha: float = 0.55,
                   ignore_index: int = 255) -> np.ndarray:
    """Blend a class-id map onto an RGB image (``ignore_index`` pixels stay as they are)."""
    if image.shape[:2] != label.shape:
        raise ValueError(f'image {image.shape[:2]} and label {label.shape} sizes differ')
    colours = np.zeros((256, 3), dtype=np.float32)
    colours[:len(palette)] = np.asarray(palette, dtype=np.float32)
    out = image.astype(np.float32)
    keep = label != ignore_index
    out[keep] = (1 - alpha) * out[keep] + alpha * colours[label[keep]]
    return out.clip(0, 255).astype(np.uint8)


def save_overlays(runner, out_dir: str, num: int = 6) -> list:
    """Predict the first ``num`` held-out images; one PNG per image (image | GT | pred)."""
    import torch
    from PIL import Image
    os.makedirs(out_dir, exist_ok=True)
    palette = runner.val_dataloader.dataset.metainfo['palette']
    model = runner.model
    model.eval()
    paths = []
    with torch.no_grad():
        for batch in runner.val_dataloader:
            for sample in model.val_step(batch):
                img = np.asarray(Image.open(sample.img_path).convert('RGB'))
                gt = sample.gt_sem_seg.data[0].cpu().numpy().astype(np.int64)
                pred = sample.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
                row = np.concatenate([img, colour_overlay(img, gt, palette),
                                      colour_overlay(img, pred, palette)], axis=1)
                path = osp.join(out_dir, osp.splitext(osp.basename(sample.img_path))[0] + '.png')
                Image.fromarray(row).save(path)
                paths.append(path)
                if len(paths) >= num:
                    return paths
    return paths


def run_demo_stage(work_dir: str, data_root: str) -> list:
    from . import synthetic, synthetic_segmentation
    root = osp.join(data_root, 'seg_shapes')
    ensure_data(root, DATA, lambda: synthetic_segmentation.make_segmentation_shapes(
        root, **DATA), [synthetic, synthetic_segmentation])
    out = osp.join(work_dir, 'segmentation')
    t0 = time.time()
    options = {f'{loader}.dataset.data_root': root
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on the shared 2-core machine 2 threads oversubscribe (10x slower)
    try:
        runner = build_runner(config_path(CONFIG), out, options)
        runner.train()
        minutes = (time.time() - t0) / 60
        overlays = save_overlays(runner, osp.join(out, 'overlays'))
    finally:
        torch.set_num_threads(threads)
    records = read_scalars(out)
    mious = [r['mIoU'] for r in records if 'mIoU' in r]
    losses = [(r['step'], r['loss']) for r in records if 'loss' in r]
    plot_curve([s for s, _ in losses], [v for _, v in losses], osp.join(out, 'loss_curve.png'),
               'EVA ViT-Adapter + Mask2Former demo: training loss')
    iters = runner.iter
    return [('semantic segmentation (tiny EVA ViT-Adapter + Mask2Former, drawn shapes, 4 classes)',
             'held-out mIoU %, untrained -> trained',
             f'{mious[0]:.1f} -> {mious[-1]:.1f}',
             f'{iters} iters, {minutes:.1f} min; overlays: {osp.dirname(overlays[0])}'
             if overlays else f'{iters} iters, {minutes:.1f} min')]
