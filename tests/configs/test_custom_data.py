"""docs/custom_data.md, run as a user would: data laid out as the guide says, a copy of the
configs/custom/ config with only its "your data" / "your schedule" values edited, training
through tools/train.py, predictions through tools/inference.py; each must learn (task metric
well above chance).

What differs from a user's run, and only to fit 2 CPU cores in a minute: detection trains
the guide's ``_cpu-tiny`` recipe (already small, fp32); classification and segmentation
append a ``TINY`` block (docs/custom_data.md, "How the tests run the guide") that shrinks the
model and input size and uses fp32 ``OptimWrapper``; ``load_from`` / ``checkpoint`` point at a
checkpoint converted by tools/model_converters/eva_to_mm.py from a tiny random model in the
released EVA-01 layout (no released weights can be downloaded here), or at none.
"""
import glob
import json
import os
import os.path as osp
import re
import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))
CUSTOM = osp.join(ROOT, 'configs', 'custom')


def user_config(tmp_path, name, values, tiny=''):
    """configs/custom/<name> with the given ``variable = value`` lines replaced (what the
    guide tells users to edit), then the ``tiny`` block (if any) appended; the copy finds its
    bases through ``EVA_CONFIGS``, which tools/train.py sets (docs/custom_data.md)."""
    with open(osp.join(CUSTOM, name)) as f:
        text = f.read()
    for var, value in values.items():
        text, n = re.subn(rf'^{re.escape(var)} = .*$', f'{var} = {value}', text, count=1,
                          flags=re.M)
        assert n == 1, f'{name} has no line "{var} = ..."'
    if tiny:
        text += '\n# ---- TINY (tests only; docs/custom_data.md)\n' + tiny
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def train(config, work_dir, seed=None):
    """``seed``: the custom configs leave ``randomness`` unset, so mmengine draws a seed from
    numpy's global state, which depends on the tests that ran before (a learning test then
    passes alone and fails in the full suite): the learning tests fix it."""
    import train as train_cli
    extra = ['--cfg-options', f'randomness.seed={seed}'] if seed is not None else []
    train_cli.main([config, '--work-dir', work_dir] + extra)
    return sorted(glob.glob(osp.join(work_dir, '*.pth')))[-1]


def last_metrics(work_dir):
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    metrics = {}
    with open(files[-1]) as f:
        for line in f:
            metrics.update({k: v for k, v in json.loads(line).items() if '/' in k or
                            k == 'mIoU'})
    return metrics


def infer(config, ckpt, inputs, out_dir, *extra):
    import inference as cli
    return cli.main([config, ckpt, *inputs, '--out-dir', out_dir, '--device', 'cpu',
                     '--no-vis', *extra])


def draw(rng, shape, size):
    from projects.eva.demo.synthetic import draw_shape
    img = Image.new('RGB', (size, size), tuple(int(c) for c in rng.integers(0, 90, 3)))
    colour = {'circle': (230, 40, 40), 'square': (40, 200, 60), 'triangle': (60, 90, 240)}[shape]
    r = size * rng.uniform(0.25, 0.4)
    cx, cy = rng.uniform(r, size - r, 2)
    draw_shape(ImageDraw.Draw(img), shape, cx, cy, r, colour)
    return img


def tiny_converted_checkpoint(path, dims=64, depth=2, heads=2, num_classes=None):
    """A tiny model in the released EVA-01 classification layout (timm ``Eva``), converted by
    tools/model_converters/eva_to_mm.py as the guide's real checkpoint would be."""
    import timm
    model = timm.models.eva.Eva(img_size=56, patch_size=14, embed_dim=dims, depth=depth,
                                num_heads=heads, mlp_ratio=2.0, num_classes=num_classes or 7,
                                global_pool='avg', use_fc_norm=True, qkv_bias=True)
    src = str(path) + '.official.pt'
    torch.save({'model': model.state_dict()}, src)
    import subprocess
    subprocess.run([sys.executable, osp.join(ROOT, 'tools/model_converters/eva_to_mm.py'),
                    src, str(path)], check=True, capture_output=True)
    return str(path)


# ---------------------------------------------------------------------- classification
CLS_TINY = """
model['backbone'].update(arch=dict(_delete_=True, embed_dims=64, num_layers=2, num_heads=2,
                                   feedforward_channels=128),
                         img_size=56, with_cp=False, drop_path_rate=0.0,
                         fp32_attn_and_norm=False)
model['head'].update(in_channels=64, init_scale=1.0)
for loader in (train_dataloader, val_dataloader):
    loader.update(num_workers=0, persistent_workers=False, pin_memory=False)
train_dataloader['dataset']['pipeline'] = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=56, crop_ratio_range=(0.6, 1.0), backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'), dict(type='PackInputs')]
val_dataloader['dataset']['pipeline'] = [
    dict(type='LoadImageFromFile'), dict(type='ResizeEdge', scale=56, edge='short'),
    dict(type='CenterCrop', crop_size=56), dict(type='PackInputs')]
test_dataloader = val_dataloader
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
                     constructor='EVALayerDecayOptimWrapperConstructor',
                     paramwise_cfg=dict(layer_decay_rate=1.0, no_decay_1d=True))
custom_hooks = [dict(type='FiniteLossHook')]  # no EMA: 0.9999 would hide 60 iterations
default_hooks.update(logger=dict(type='LoggerHook', interval=10))
"""


@pytest.mark.slow
def test_imagefolder_classification_learns(tmp_path, one_thread):
    rng = np.random.default_rng(0)
    root = tmp_path / 'my_classification'
    classes = ('circle', 'square', 'triangle')  # the sorted class-folder names
    for split, n in (('train', 40), ('val', 12)):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                draw(rng, c, 64).save(root / split / c / f'{i:03d}.jpg')
    ckpt = tiny_converted_checkpoint(tmp_path / 'eva_tiny_mm.pth')
    cfg = user_config(tmp_path, 'eva-g-p14_custom-imagefolder.py', {
        'classes': repr(classes), 'data_root': repr(str(root)), 'checkpoint': repr(ckpt),
        'max_epochs, warmup_epochs': '8, 1', 'batch_size': '16'}, CLS_TINY)
    work = str(tmp_path / 'work')
    best = train(cfg, work)
    top1 = last_metrics(work)['accuracy/top1']
    assert top1 > 80, top1  # chance: 33%
    recs = infer(cfg, best, [str(root / 'val')], str(tmp_path / 'pred'))
    acc = np.mean([r['pred_class'] == osp.basename(osp.dirname(r['input'])) for r in recs])
    assert len(recs) == 36 and acc * 100 == pytest.approx(top1, abs=1e-6)


# ---------------------------------------------------------------------- detection
@pytest.mark.slow
def test_coco_format_detection_learns(tmp_path, one_thread):
    from projects.eva.demo.synthetic_detection import make_coco_instances
    root = str(tmp_path / 'my_coco') + '/'
    # COCO json + image folders, the layout of the guide
    make_coco_instances(root, 'train', num=160, size=128, seed=0, max_shapes=2,
                        radius=(0.15, 0.28))
    make_coco_instances(root, 'val', num=24, size=128, seed=1, max_shapes=2,
                        radius=(0.15, 0.28))
    with open(root + 'annotations/instances_train.json') as f:
        cats = [c['name'] for c in sorted(json.load(f)['categories'], key=lambda c: c['id'])]
    # the guide's CPU recipe, downsized already: only its data and schedule values change
    cfg = user_config(tmp_path, 'eva02-b-p16_cascade-mask-rcnn_custom-coco_cpu-tiny.py', {
        'classes': repr(tuple(cats)), 'data_root': repr(root),
        'train_ann, val_ann': "'annotations/instances_train.json', "
                              "'annotations/instances_val.json'",
        'max_iters, warmup_iters': '240, 20'})
    work = str(tmp_path / 'work')
    ckpt = train(cfg, work, seed=0)
    metrics = last_metrics(work)
    assert metrics['coco/bbox_mAP'] > 0.3 and metrics['coco/segm_mAP'] > 0.3, metrics
    recs = infer(cfg, ckpt, [root + 'val'], str(tmp_path / 'pred'))
    assert len(recs) == 24
    top = [r['instances'][0] for r in recs if r['instances']]
    assert len(top) == 24 and {t['class'] for t in top} <= set(cats)
    assert np.mean([t['score'] for t in top]) > 0.5


# ---------------------------------------------------------------------- segmentation
def seg_tiny_block(num_classes):
    """The demo's tiny ViT-Adapter + Mask2Former (configs/demo/eva-mask2former_*) in place of
    the ViT-g one, at 128 px."""
    from mmengine.config import Config
    demo = Config.fromfile(osp.join(ROOT, 'configs/demo/'
                                    'eva-mask2former_vit-tiny-adapter-p16_1xb8-160it_shapes-seg-128.py'))
    head = demo.model.decode_head.to_dict()
    head.update(num_classes=num_classes)
    head['loss_cls']['class_weight'] = [1.0] * num_classes + [0.1]
    lines = [
        f"model['backbone'] = dict(_delete_=True, **{demo.model.backbone.to_dict()!r})",
        f"model['decode_head'] = dict(_delete_=True, **{head!r})",
        f"model['data_preprocessor'] = dict(_delete_=True, **{demo.model.data_preprocessor.to_dict()!r})",
        f"data_preprocessor = model['data_preprocessor']",
        f"train_dataloader.update(batch_size=8, num_workers=0, persistent_workers=False)",
        f"train_dataloader['dataset']['pipeline'] = {demo.train_pipeline!r}",
        f"val_dataloader.update(batch_size=8, num_workers=0, persistent_workers=False)",
        f"val_dataloader['dataset']['pipeline'] = {demo.eval_pipeline!r}",
        "test_dataloader = val_dataloader",
        f"optim_wrapper = dict(_delete_=True, **{demo.optim_wrapper.to_dict()!r})",
        "default_hooks.update(logger=dict(type='LoggerHook', interval=20, "
        "log_metric_by_epoch=False))",
    ]
    return '\n'.join(lines) + '\n'


@pytest.mark.slow
def test_mmseg_layout_segmentation_learns(tmp_path, one_thread):
    from projects.eva.demo.synthetic_segmentation import make_segmentation_shapes
    root = str(tmp_path / 'my_segmentation')
    # images/{training,validation}/*.jpg + annotations/{training,validation}/*.png (uint8)
    make_segmentation_shapes(root, num_train=96, num_val=16, size=128, seed=0)
    classes = ('background', 'circle', 'square', 'triangle')
    cfg = user_config(tmp_path, 'eva-mask2former_vit-g-adapter-p16_custom-seg.py', {
        'classes': repr(classes),
        'palette': '[[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200]]',
        'data_root': repr(root), 'load_from': 'None', 'max_iters, warmup_iters': '120, 20',
        'batch_size': '8'}, seg_tiny_block(len(classes)))
    work = str(tmp_path / 'work')
    ckpt = train(cfg, work, seed=0)
    miou = last_metrics(work)['mIoU']
    # chance here is "all background": its mIoU (~20: background IoU ~0.8 / 4) from the GT
    gts = [np.array(Image.open(p)) for p in
           sorted(glob.glob(osp.join(root, 'annotations', 'validation', '*.png')))]
    bg = sum(np.sum(g == 0) for g in gts) / sum(g.size for g in gts)
    assert miou > 100 * bg / 4 + 5, (miou, 100 * bg / 4)  # measured: 30.9 vs 20.2
    out = str(tmp_path / 'pred')
    recs = infer(cfg, ckpt, [osp.join(root, 'images', 'validation')], out)
    assert len(recs) == 16
    inter, union = np.zeros(4), np.zeros(4)
    for r in recs:
        pred = np.array(Image.open(osp.join(out, 'preds', r['seg_map'])))
        gt = np.array(Image.open(r['input'].replace('images', 'annotations').replace(
            '.jpg', '.png')))
        for c in range(4):
            inter[c] += np.sum((pred == c) & (gt == c))
            union[c] += np.sum((pred == c) | (gt == c))
    assert 100 * np.mean(inter / np.maximum(union, 1)) == pytest.approx(miou, abs=1.0)
