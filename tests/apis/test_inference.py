"""tools/inference.py and projects.eva.apis: every task through the upstream inferencers.

Fast tests: the demo configs with untrained weights on real photographs (scikit-learn's
china.jpg and flower.jpg): files written, documented JSON fields, class names from the
config (not the COCO / Cityscapes fallbacks), upstream inferencers built directly from our
config + checkpoint. Slow tests: each demo config trained briefly through tools/train.py on
small generated data, then tools/test.py --out and tools/inference.py on the same held-out
inputs must give the same predictions.
"""
import glob
import json
import os
import os.path as osp
import pickle
import sys

import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))

from projects.eva.apis import build_inferencer, collect_inputs, run_inference, task_of  # noqa

DEMO = osp.join(ROOT, 'configs', 'demo')
CLS = osp.join(DEMO, 'eva-cls_vit-tiny-p14_1xb64-80e_digits.py')
DET = osp.join(DEMO, 'eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py')
SEG = osp.join(DEMO, 'eva-mask2former_vit-tiny-adapter-p16_1xb8-160it_shapes-seg-128.py')
VID = osp.join(DEMO, 'eva-video_vit-tiny-p14_1xb16-8e_moving-shapes.py')
CLIP = osp.join(DEMO, 'eva-clip_vit-tiny-p8_1xb64-6e_shapes-captions.py')


def photos():
    from sklearn.datasets import images
    folder = osp.dirname(images.__file__)
    paths = [osp.join(folder, n) for n in ('china.jpg', 'flower.jpg')]
    assert all(osp.isfile(p) for p in paths)
    return paths


def read_json(out_dir, name):
    with open(osp.join(out_dir, 'preds', name + '.json')) as f:
        return json.load(f)


def test_task_dispatch():
    from mmengine.config import Config
    tasks = {p: task_of(Config.fromfile(p)) for p in (CLS, DET, SEG, VID, CLIP)}
    assert tasks == {CLS: 'classification', DET: 'detection', SEG: 'segmentation',
                     VID: 'video', CLIP: 'zero-shot'}
    mim = Config.fromfile(osp.join(DEMO, 'eva-mim_vit-tiny-p14_1xb32-8e_shapes.py'))
    assert task_of(mim) == 'mim'  # one task_of for every tool (memory, FLOPs, inference)
    from projects.eva.apis.inference import inference_task
    with pytest.raises(ValueError, match='MIM pretraining'):
        inference_task(mim)


def test_inputs_expand_folders_and_fail_clearly(tmp_path):
    a, b = photos()
    folder = tmp_path / 'imgs'
    (folder / 'sub').mkdir(parents=True)
    for dst in (folder / 'x.jpg', folder / 'sub' / 'x.jpg'):
        dst.write_bytes(open(a, 'rb').read())
    (folder / 'notes.txt').write_text('not an image')
    paths = collect_inputs([str(folder), b], 'classification')
    assert paths == [str(folder / 'sub' / 'x.jpg'), str(folder / 'x.jpg'), b]
    from projects.eva.apis.inference import output_names
    assert output_names(paths) == ['x', 'x_1', 'flower']
    with pytest.raises(FileNotFoundError, match='input not found'):
        collect_inputs([str(tmp_path / 'missing.jpg')], 'classification')
    with pytest.raises(FileNotFoundError, match='no video files'):
        collect_inputs([str(folder)], 'video')
    with pytest.raises(ValueError, match='not an image file'):
        collect_inputs([str(folder / 'notes.txt')], 'detection')


def _cli(argv):
    import inference as cli
    return cli.main(argv)


def test_classification_on_photos_cli(tmp_path, one_thread):
    out = str(tmp_path / 'out')
    # the demo config's names are the digit folders; the CLI can name a checkpoint's classes
    recs = _cli([CLS, 'none', *photos(), '--out-dir', out, '--device', 'cpu', '--topk', '3',
                 '--classes', ','.join(f'digit {i}' for i in range(10))])
    assert len(recs) == 2
    for path, name in zip(photos(), ('china', 'flower')):
        rec = read_json(out, name)
        assert rec['task'] == 'classification' and rec['input'] == path
        assert rec['num_classes'] == 10 and len(rec['topk']) == 3
        scores = [t['score'] for t in rec['topk']]
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6
        assert rec['pred_label'] == rec['topk'][0]['label']
        assert rec['pred_class'] == f'digit {rec["pred_label"]}'
        assert rec['config'] == CLS and rec['checkpoint'] is None
        from PIL import Image
        vis = Image.open(osp.join(out, 'vis', rec['visualization']))
        assert vis.size == Image.open(path).size  # drawn on the photo itself


def test_detection_on_photos_uses_config_classes(tmp_path, one_thread):
    inferencer = build_inferencer(DET, None, device='cpu')
    from mmdet.apis import DetInferencer
    assert isinstance(inferencer, DetInferencer)
    # no checkpoint meta: the config's classes, not DetInferencer's COCO fallback
    assert inferencer.model.dataset_meta['classes'] == ['circle', 'square', 'triangle']
    out = str(tmp_path / 'det')
    recs = run_inference(inferencer, photos(), out_dir=out, batch_size=2, score_thr=0.0,
                         progress=False)
    for rec, name in zip(recs, ('china', 'flower')):
        assert rec == read_json(out, name)
        assert rec['num_instances'] == len(rec['instances']) > 0
        for inst in rec['instances']:
            assert inst['class'] in ('circle', 'square', 'triangle')
            x1, y1, x2, y2 = inst['bbox']
            assert 0 <= x1 <= x2 <= 640 and 0 <= y1 <= y2 <= 480  # original image pixels
            assert inst['mask']['size'] == [427, 640]
        assert osp.isfile(osp.join(out, 'vis', name + '.png'))


def test_segmentation_on_photos(tmp_path, one_thread):
    inferencer = build_inferencer(SEG, None, device='cpu')
    from mmseg.apis import MMSegInferencer
    assert isinstance(inferencer, MMSegInferencer)
    assert inferencer.model.dataset_meta['classes'] == \
        ['background', 'circle', 'square', 'triangle']
    out = str(tmp_path / 'seg')
    recs = run_inference(inferencer, photos(), out_dir=out, progress=False)
    from PIL import Image
    for rec, path in zip(recs, photos()):
        seg = np.array(Image.open(osp.join(out, 'preds', rec['seg_map'])))
        assert list(seg.shape) == rec['shape'] == [427, 640]
        assert set(np.unique(seg)) <= {0, 1, 2, 3}
        assert abs(sum(c['fraction'] for c in rec['classes_present']) - 1) < 1e-6
        assert Image.open(osp.join(out, 'vis', rec['visualization'])).size == (640, 427)


def test_zero_shot_on_photos_with_given_classes(tmp_path, one_thread):
    classes = ['a temple', 'a flower', 'a cat']
    prompts = tmp_path / 'prompts.txt'
    prompts.write_text('a photo of {}.\n# comment\nan image of {}\n')
    out = str(tmp_path / 'zs')
    _cli([CLIP, 'none', *photos(), '--out-dir', out, '--device', 'cpu', '--classes',
          ','.join(classes), '--prompts-file', str(prompts)])
    rec = read_json(out, 'china')
    assert rec['task'] == 'zero-shot' and rec['num_classes'] == 3
    assert {t['class'] for t in rec['topk']} == set(classes)
    with pytest.raises(ValueError, match='needs class names'):
        from mmengine.config import Config
        cfg = Config.fromfile(CLIP)
        cfg.model.classnames = None
        build_inferencer(cfg, None, device='cpu')


def test_video_inference(tmp_path, one_thread):
    from projects.eva.demo.synthetic_video import make_moving_shapes
    make_moving_shapes(str(tmp_path / 'v'), {'val': 1}, size=64, frames=16)
    inferencer = build_inferencer(VID, None, device='cpu')
    from mmaction.apis.inferencers import ActionRecogInferencer
    assert isinstance(inferencer, ActionRecogInferencer)
    out = str(tmp_path / 'vout')
    recs = run_inference(inferencer, str(tmp_path / 'v' / 'videos'), out_dir=out, topk=2,
                         progress=False)
    assert len(recs) == 4
    rec = read_json(out, 'down_0000')
    assert rec['task'] == 'video' and rec['num_classes'] == 4 and len(rec['topk']) == 2
    assert rec['pred_class'] in ('left', 'right', 'up', 'down')
    from PIL import Image
    gif = Image.open(osp.join(out, 'vis', rec['visualization']))
    assert gif.format == 'GIF' and gif.n_frames > 1


def test_upstream_inferencers_take_our_config_and_checkpoint(tmp_path, one_thread):
    """A user can use mmpretrain / mmdet inferencers directly with our config + checkpoint."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope
    from mmpretrain.apis import ImageClassificationInferencer
    cfg = Config.fromfile(CLS)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    ckpt = str(tmp_path / 'cls.pth')
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=[str(i) for i in range(10)]))), ckpt)
    inf = ImageClassificationInferencer(CLS, pretrained=ckpt, device='cpu')
    res = inf(photos()[0])[0]
    assert res['pred_class'] == str(res['pred_label'])
    batch = inf.model.data_preprocessor(next(iter(inf.preprocess([photos()[0]]))))
    logits_ref = model.eval()(batch['inputs'], mode='tensor')
    assert torch.allclose(torch.as_tensor(res['pred_scores']),
                          torch.softmax(logits_ref, -1)[0], atol=1e-5)
    from mmdet.apis import DetInferencer
    det = DetInferencer(DET, weights=None, device='cpu', show_progress=False)
    assert 'predictions' in det(photos()[1], no_save_pred=True, no_save_vis=True)


# ---------------------------------------------------------------------- slow: vs tools/test.py
def _train(config, work_dir, options):
    import train as train_cli
    argv = [config, '--work-dir', work_dir, '--cfg-options'] + \
        [f'{k}={v}' for k, v in options.items()]
    train_cli.main(argv)
    ckpts = sorted(glob.glob(osp.join(work_dir, '*.pth')))
    assert ckpts, os.listdir(work_dir)
    return ckpts[-1]


def _test(config, ckpt, work_dir, options):
    import test as test_cli
    out = osp.join(work_dir, 'test_preds.pkl')
    argv = [config, ckpt, '--work-dir', work_dir, '--out', out, '--cfg-options'] + \
        [f'{k}={v}' for k, v in options.items()]
    test_cli.main(argv)
    with open(out, 'rb') as f:
        return pickle.load(f)


@pytest.mark.slow
def test_classification_predictions_equal_tools_test(tmp_path, one_thread):
    from projects.eva.demo.synthetic import make_digits_folders
    root = str(tmp_path / 'digits')
    make_digits_folders(root, size=56, val_fraction=0.05)
    data = {f'{k}_dataloader.dataset.data_root': root for k in ('val', 'test')}
    data['train_dataloader.dataset.dataset.data_root'] = root
    loaders = {f'{k}_dataloader.{o}': v for k in ('train', 'val', 'test')
               for o, v in (('num_workers', 0), ('persistent_workers', False))}
    ckpt = _train(CLS, str(tmp_path / 'work'), {**data, **loaders, 'train_cfg.max_epochs': 1,
                                               'train_cfg.val_interval': 1})
    dumped = _test(CLS, ckpt, str(tmp_path / 'work'), {**data, **loaders})
    out = str(tmp_path / 'out')
    recs = _cli([CLS, ckpt, osp.join(root, 'val'), '--out-dir', out, '--device', 'cpu',
                 '--batch-size', '16', '--no-vis'])
    by_path = {r['input']: r for r in recs}
    assert len(by_path) == len(dumped) > 50
    for d in dumped:
        rec = by_path[d['img_path']]
        assert rec['pred_label'] == int(d['pred_label'])
        assert rec['pred_score'] == pytest.approx(float(d['pred_score'].max()), abs=1e-5)
        # the checkpoint's dataset_meta names the classes: the digit folders
        assert rec['pred_class'] == str(rec['pred_label'])


NO_WORKERS = {'num_workers': 0, 'persistent_workers': False}


def _loaders(*names, **extra):
    return {f'{n}_dataloader.{k}': v for n in names for k, v in {**NO_WORKERS, **extra}.items()}


@pytest.mark.slow
def test_detection_predictions_equal_tools_test(tmp_path, one_thread):
    from projects.eva.demo.synthetic_detection import make_coco_instances
    root = str(tmp_path / 'det') + '/'
    make_coco_instances(root, 'train', num=8, size=128, seed=0)
    make_coco_instances(root, 'val', num=6, size=128, seed=1)
    data = {f'{k}_dataloader.dataset.data_root': root for k in ('train', 'val', 'test')}
    data.update({'val_evaluator.ann_file': root + 'annotations/instances_val.json',
                 'test_evaluator.ann_file': root + 'annotations/instances_val.json',
                 **_loaders('train', 'val', 'test')})
    ckpt = _train(DET, str(tmp_path / 'work'), {**data, 'train_cfg.max_iters': 4,
                                               'train_cfg.val_interval': 4,
                                               'default_hooks.checkpoint.interval': 4})
    dumped = _test(DET, ckpt, str(tmp_path / 'work'), data)
    recs = _cli([DET, ckpt, root + 'val', '--out-dir', str(tmp_path / 'out'), '--device', 'cpu',
                 '--batch-size', '4', '--no-vis'])
    by_path = {r['input']: r for r in recs}
    assert len(by_path) == len(dumped) == 6
    from pycocotools import mask as mask_utils
    compared = 0
    for d in dumped:
        rec = by_path[osp.join(root, 'val', osp.basename(d['img_path']))]
        inst = d['pred_instances']
        assert rec['num_instances'] == len(inst['scores'])
        order = np.argsort(-inst['scores'].numpy(), kind='stable')
        for j, i in enumerate(order):
            got = rec['instances'][j]
            assert got['score'] == pytest.approx(float(inst['scores'][i]), abs=1e-5)
            assert got['label'] == int(inst['labels'][i])
            np.testing.assert_allclose(got['bbox'], inst['bboxes'][i].numpy(), atol=1e-3)
            ref = inst['masks'][i]
            ref = mask_utils.decode(ref) if isinstance(ref, dict) else np.asarray(ref)
            got_mask = mask_utils.decode(dict(size=got['mask']['size'],
                                              counts=got['mask']['counts'].encode()))
            assert (got_mask.astype(bool) == ref.astype(bool)).mean() > 0.999
            compared += 1
    assert compared > 0


@pytest.mark.slow
def test_segmentation_predictions_equal_tools_test(tmp_path, one_thread):
    from projects.eva.demo.synthetic_segmentation import make_segmentation_shapes
    root = str(tmp_path / 'seg')
    make_segmentation_shapes(root, num_train=8, num_val=4, size=128, seed=0)
    data = {f'{k}_dataloader.dataset.data_root': root for k in ('train', 'val', 'test')}
    data.update(_loaders('train', 'val', 'test'))
    ckpt = _train(SEG, str(tmp_path / 'work'), {
        **data, 'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
        'default_hooks.checkpoint.interval': 2, 'custom_hooks': '[]',
        'train_dataloader.batch_size': 2})
    dumped = _test(SEG, ckpt, str(tmp_path / 'work'), data)
    out = str(tmp_path / 'out')
    # with pictures: a trained checkpoint's dataset_meta (label_map, reduce_zero_label) once
    # made MMSegInferencer's visualiser raise TypeError
    recs = _cli([SEG, ckpt, osp.join(root, 'images', 'validation'), '--out-dir', out,
                 '--device', 'cpu', '--batch-size', '2'])
    by_path = {r['input']: r for r in recs}
    assert len(by_path) == len(dumped) == 4
    from PIL import Image
    for d in dumped:
        rec = by_path[d['img_path']]
        # drawn at the readable 224 px short edge; the label map stays at the input's 128
        assert Image.open(osp.join(out, 'vis', rec['visualization'])).size == (224, 224)
        ref = d['pred_sem_seg']['data'][0].numpy()
        got = np.array(Image.open(osp.join(out, 'preds', rec['seg_map'])))
        assert got.shape == ref.shape and (got == ref).mean() > 0.999


@pytest.mark.slow
def test_video_predictions_equal_tools_test(tmp_path, one_thread):
    """mmaction2's inferencer tests one crop (it turns ThreeCrop into CenterCrop, its
    documented memory saving); tools/test.py is run with the same view."""
    from projects.eva.demo.synthetic_video import make_moving_shapes
    root = str(tmp_path / 'video')
    make_moving_shapes(root, {'train': 2, 'val': 1}, size=64, frames=16)
    data = {}
    for k, split in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        ds = 'train_dataloader.dataset.dataset' if k == 'train' else f'{k}_dataloader.dataset'
        data[f'{ds}.ann_file'] = osp.join(root, f'{split}_list_videos.txt')
        data[f'{ds}.data_prefix.video'] = root
    data.update(_loaders('train', 'val', 'test'))
    ckpt = _train(VID, str(tmp_path / 'work'), {**data, 'train_cfg.max_epochs': 1,
                                               'train_cfg.val_begin': 1,
                                               'train_cfg.val_interval': 1,
                                               'default_hooks.checkpoint.interval': 1})
    dumped = _test(VID, ckpt, str(tmp_path / 'work'),
                   {**data, 'test_dataloader.dataset.pipeline.4.type': 'CenterCrop'})
    recs = _cli([VID, ckpt, osp.join(root, 'videos', 'val'), '--out-dir',
                 str(tmp_path / 'out'), '--device', 'cpu', '--no-vis'])
    by_path = {r['input']: r for r in recs}
    # mmaction2 packs no file name: the dump follows the annotation list
    with open(osp.join(root, 'val_list_videos.txt')) as f:
        listed = [osp.join(root, line.split()[0]) for line in f if line.strip()]
    assert len(by_path) == len(dumped) == len(listed) == 4
    for path, d in zip(listed, dumped):
        rec = by_path[path]
        scores = d['pred_score'].numpy()
        assert rec['pred_label'] == int(scores.argmax())
        assert rec['pred_score'] == pytest.approx(float(scores.max()), abs=1e-5)
        assert rec['pred_class'] == ('left', 'right', 'up', 'down')[rec['pred_label']]


@pytest.mark.slow
def test_zero_shot_predictions_equal_tools_test(tmp_path, one_thread):
    from projects.eva.demo.synthetic_clip import make_caption_dataset
    root = str(tmp_path / 'clip')
    make_caption_dataset(root, num_train=128, num_test_per_class=2, size=40, seed=0)
    data = {f'{k}_dataloader.dataset.data_root': root for k in ('train', 'val', 'test')}
    data.update(_loaders('train', 'val', 'test'))
    ckpt = _train(CLIP, str(tmp_path / 'work'), {**data, 'train_cfg.max_epochs': 1,
                                                'train_cfg.val_interval': 1,
                                                'default_hooks.checkpoint.interval': 1})
    dumped = _test(CLIP, ckpt, str(tmp_path / 'work'), data)
    recs = _cli([CLIP, ckpt, osp.join(root, 'test'), '--out-dir', str(tmp_path / 'out'),
                 '--device', 'cpu', '--batch-size', '12', '--no-vis'])
    from mmengine.config import Config
    names = Config.fromfile(CLIP).classnames
    by_path = {r['input']: r for r in recs}
    assert len(by_path) == len(dumped) == 2 * len(names)
    for d in dumped:
        rec = by_path[d['img_path']]
        assert rec['pred_label'] == int(d['pred_label'])
        assert rec['pred_score'] == pytest.approx(float(d['pred_score'].max()), abs=1e-5)
        assert rec['pred_class'] == names[rec['pred_label']]
