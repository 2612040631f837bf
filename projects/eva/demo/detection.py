"""Demo stage 'detection': a tiny EVA Cascade Mask R-CNN trained on generated COCO-format
shapes with masks; bbox / segm mAP on the held-out split before and after training, plus
overlay PNGs of the trained model's predictions."""
import os
import os.path as osp
import time

import numpy as np

from .utils import build_runner, config_path, ensure_data, plot_curve, read_scalars

CONFIG = 'demo/eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py'
PALETTE = ((230, 60, 60), (60, 200, 90), (70, 110, 240))
# 1-3 large shapes per 128 px image (boxes 32-64 px): learnable from scratch in minutes
DATA = dict(size=128, max_shapes=3, radius=(0.12, 0.25), splits=dict(train=(400, 0), val=(64, 1)))


def _options(root: str, name: str) -> dict:
    ann = osp.join(root, 'annotations', 'instances_{}.json')
    return {'visualizer.name': name,  # the visualizer is a named singleton: one per runner
            'train_dataloader.dataset.data_root': root + '/',
            'val_dataloader.dataset.data_root': root + '/',
            'test_dataloader.dataset.data_root': root + '/',
            'val_evaluator.ann_file': ann.format('val'),
            'test_evaluator.ann_file': ann.format('val')}


def make_data(root: str) -> None:
    """Generate the shapes; again when ``DATA`` or the generator changed since."""
    from . import synthetic, synthetic_detection

    def make():
        for split, (num, seed) in DATA['splits'].items():
            synthetic_detection.make_coco_instances(
                root, split, num=num, size=DATA['size'], seed=seed,
                max_shapes=DATA['max_shapes'], radius=DATA['radius'])
    ensure_data(root, DATA, make, [synthetic, synthetic_detection])


def draw_overlays(runner, out_dir: str, num: int = 4, score_thr: float = 0.5) -> list:
    """Predictions (boxes, masks, class and score) drawn over ``num`` held-out images."""
    import torch
    from PIL import Image, ImageDraw
    os.makedirs(out_dir, exist_ok=True)
    classes = runner.val_dataloader.dataset.metainfo['classes']
    batch = next(iter(runner.val_dataloader))
    model = runner.model.eval()
    with torch.no_grad():
        results = model.test_step(batch)
    paths = []
    for i, res in enumerate(results[:num]):
        img = Image.open(res.img_path).convert('RGB')
        base = np.asarray(img).astype(np.float32)
        inst = res.pred_instances[res.pred_instances.scores > score_thr]
        for mask, label in zip(inst.masks.cpu().numpy(), inst.labels.tolist()):
            colour = np.array(PALETTE[label % len(PALETTE)], np.float32)
            base[mask] = 0.5 * base[mask] + 0.5 * colour
        img = Image.fromarray(base.astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for box, label, score in zip(inst.bboxes.tolist(), inst.labels.tolist(),
                                     inst.scores.tolist()):
            draw.rectangle(box, outline=PALETTE[label % len(PALETTE)], width=1)
            draw.text((box[0] + 1, box[1] + 1), f'{classes[label]} {score:.2f}',
                      fill=(255, 255, 255))
        path = osp.join(out_dir, f'val_{i}.png')
        img.resize((img.width * 2, img.height * 2), Image.NEAREST).save(path)
        paths.append(path)
    return paths


def run_demo_stage(work_dir: str, data_root: str) -> list:
    import torch
    root = osp.join(data_root, 'detection')
    t0 = time.time()
    make_data(root)
    out = osp.join(work_dir, 'detection')
    # One intra-op thread: the ops here are small, and on a shared 2-core machine a second
    # OpenMP thread waiting for a busy core made every iteration ~15x slower (6 s vs 0.4 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(out, root, t0)
    finally:
        torch.set_num_threads(threads)


def _run(out: str, root: str, t0: float) -> list:
    baseline = build_runner(config_path(CONFIG), osp.join(out, 'untrained'),
                            _options(root, f'det_demo_untrained_{t0}'),
                            mode='test')
    baseline.model.init_weights()  # the same initialisation training starts from
    before = baseline.test()
    runner = build_runner(config_path(CONFIG), out, _options(root, f'det_demo_{t0}'))
    runner.train()
    minutes = (time.time() - t0) / 60
    records = read_scalars(out)
    after = [r for r in records if 'coco/bbox_mAP' in r][-1]
    losses = [r for r in records if 'loss' in r]
    plot_curve([r['step'] for r in losses], [r['loss'] for r in losses],
               osp.join(out, 'loss_curve.png'), 'EVA Cascade Mask R-CNN demo: total loss')
    draw_overlays(runner, osp.join(out, 'overlays'))
    iters = runner.train_loop.max_iters
    return [
        ('detection: tiny EVA Cascade Mask R-CNN on generated shapes (held-out split)',
         'bbox mAP, untrained -> trained',
         f"{before['coco/bbox_mAP']:.3f} -> {after['coco/bbox_mAP']:.3f}",
         f'{iters} iters, {minutes:.1f} min (incl. both evaluations)'),
        ('instance segmentation: same model',
         'segm mAP, untrained -> trained',
         f"{before['coco/segm_mAP']:.3f} -> {after['coco/segm_mAP']:.3f}",
         f'overlays: {osp.join(out, "overlays")}'),
    ]
