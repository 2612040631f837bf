"""Detection faults: bad COCO / LVIS annotations, an image without detections, --amp on
CPU, NaN, a checkpoint of another model, input sizes, resume of the random state."""
import json
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.registry import init_default_scope

from reliability_tasks import assert_nan_run_stops_and_saves_nothing_non_finite, runner_for

# --------------------------------------------------------------------------------------------
# 2. COCO / LVIS annotations: unknown image ids and degenerate boxes are errors (or counted)


def _coco_json(path, lvis=False):
    images = [dict(id=1, width=100, height=80), dict(id=2, width=50, height=50)]
    for img in images:
        if lvis:
            img.update(coco_url=f"http://images.cocodataset.org/val2017/{img['id']:012d}.jpg",
                       not_exhaustive_category_ids=[], neg_category_ids=[])
        else:
            img['file_name'] = f"{img['id']:012d}.jpg"
    cats = [dict(id=1, name='a'), dict(id=2, name='b')]
    if lvis:
        for c in cats:
            c.update(synset=f"{c['name']}.n.01", frequency='f', image_count=1)

    def ann(i, img, cat, box, **kw):
        return dict(dict(id=i, image_id=img, category_id=cat, bbox=box, area=box[2] * box[3],
                         iscrowd=0, segmentation=[]), **kw)

    anns = [ann(1, 1, 1, [10, 10, 20, 20]),
            ann(2, 2, 2, [5, 5, 30, 10]),
            ann(3, 99, 1, [10, 10, 20, 20]),              # unknown image id
            ann(4, 1, 1, [296.65, 38.33, 1.03, 0.0]),     # zero height (as COCO ann 918)
            ann(5, 2, 2, [200, 200, 10, 10]),             # outside its 50x50 image
            ann(6, 1, 7, [10, 10, 20, 20])]               # unknown category
    if not lvis:
        anns.append(ann(7, 1, 2, [40, 40, 10, 10], iscrowd=1))  # crowd: ignored, not an error
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=cats), f)
    return str(path)


def _det_dataset(type_, ann_file, **kw):
    import projects.eva.detection  # noqa: F401
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    metainfo = None if 'LVIS' in type_ else dict(classes=('a', 'b'))
    return DATASETS.build(dict(type=type_, ann_file=ann_file, data_prefix=dict(img=''),
                               metainfo=metainfo, pipeline=[], test_mode=True, **kw))


@pytest.mark.parametrize('kind', ['CheckedCocoDataset', 'CheckedLVISV1Dataset'])
def test_bad_coco_lvis_annotations_are_errors_naming_file_id_and_problem(tmp_path, kind):
    path = _coco_json(tmp_path / 'anns.json', lvis='LVIS' in kind)
    with pytest.raises(ValueError) as err:
        _det_dataset(kind, path)
    msg = str(err.value)
    assert msg.startswith(f'{path}: 4 bad annotation(s)'), msg
    for needle in ('annotation id 3: unknown image_id 99',
                   'annotation id 4: degenerate bbox [296.65, 38.33, 1.03, 0.0]',
                   'annotation id 5: bbox [200, 200, 10, 10] lies outside its 50x50 image',
                   'annotation id 6: unknown category_id 7'):
        assert needle in msg, (needle, msg)
    assert 'annotation id 1:' not in msg and 'annotation id 7:' not in msg


def test_bad_coco_annotations_skipped_only_when_asked_counted_and_logged(tmp_path, monkeypatch):
    from mmdet.datasets import CocoDataset

    import projects.eva.detection.checked_dataset as checked
    path = _coco_json(tmp_path / 'anns.json')
    logged = []
    monkeypatch.setattr(checked, 'MMLogger', SimpleNamespace(
        get_current_instance=lambda: SimpleNamespace(warning=logged.append)))
    ds = _det_dataset('CheckedCocoDataset', path, on_bad_annotation='skip')
    assert sorted(i for i, _, _ in ds.bad_annotations) == [3, 4, 5, 6]
    assert len(logged) == 1 and logged[0].startswith(f'{path}: skipped 4 bad annotation(s)')
    assert "'degenerate bbox': 1" in logged[0] and "'unknown image': 1" in logged[0]
    # what remains is exactly what mmdet's CocoDataset keeps (it drops the same 4 silently)
    plain = CocoDataset(ann_file=path, data_prefix=dict(img=''), metainfo=dict(classes=('a', 'b')),
                        pipeline=[], test_mode=True)
    got = [ds.get_data_info(i)['instances'] for i in range(len(ds))]
    assert got == [plain.get_data_info(i)['instances'] for i in range(len(plain))]
    assert [len(x) for x in got] == [2, 1]  # image 1: ann 1 + the crowd box (ignore_flag 1)
    assert [x['ignore_flag'] for x in got[0]] == [0, 1]
    with pytest.raises(ValueError, match="on_bad_annotation must be 'error' or 'skip'"):
        _det_dataset('CheckedCocoDataset', path, on_bad_annotation='warn')


def test_coco_file_without_images_is_an_error(tmp_path):
    path = tmp_path / 'empty.json'
    path.write_text(json.dumps(dict(images=[], annotations=[], categories=[dict(id=1, name='a')])))
    with pytest.raises(ValueError, match=f'{path}: no images in the annotation file'):
        _det_dataset('CheckedCocoDataset', str(path))



def test_detection_input_size_the_backbone_cannot_take_is_named():
    """Our configs pad every batch to a multiple of 32 (and to a fixed square), so any image
    size works; a config that pads to a size the patch does not divide gets the size named."""
    import copy

    import projects.eva.detection  # noqa: F401
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    init_default_scope('mmdet')
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(
        root, 'configs/demo/eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py')).model

    def detect(h, w, **preprocessor):
        model_cfg = copy.deepcopy(cfg)
        model_cfg.data_preprocessor.update(preprocessor)
        torch.manual_seed(0)
        model = MODELS.build(model_cfg).eval()
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             scale_factor=(1., 1.)))
        with torch.no_grad():
            return model.test_step(dict(inputs=[torch.zeros(3, h, w, dtype=torch.uint8)],
                                        data_samples=[sample]))[0]

    for h, w in ((100, 90), (37, 300)):  # padded by the config: fine
        assert detect(h, w).pred_instances.bboxes.shape[1] == 4
    with pytest.raises(ValueError, match='input size 100x90 is not a multiple of the patch size 16'):
        detect(100, 90, pad_size_divisor=1, test_pad_size=None)


@pytest.mark.slow
def test_iteration_based_resume_repeats_the_uninterrupted_losses(tmp_path, one_thread):
    """Detection (iteration-based loop, InfiniteSampler, drop path, RPN/RoI random sampling):
    12 iterations straight vs 6 + ``--resume`` from iter_6 give the same losses bit for bit.
    Without TorchRNGStateHook (added by tools/train.py) they differed by up to 5e-3."""
    from projects.eva.demo.synthetic_detection import make_coco_instances
    from projects.eva.demo.utils import config_path, read_scalars
    from projects.eva.runner import build_runner
    root = str(tmp_path / 'data')
    make_coco_instances(root, 'train', num=48, seed=0, max_shapes=3, radius=(0.12, 0.25))
    make_coco_instances(root, 'val', num=4, seed=1, max_shapes=3, radius=(0.12, 0.25))
    cfg = config_path('demo/eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py')

    def train(work_dir, resume=None):
        options = _options(root, f'resume_test_{work_dir}_{resume is not None}')
        options.update({'train_cfg.max_iters': 12, 'train_cfg.val_interval': 1000,
                        'default_hooks.checkpoint.interval': 6,
                        'default_hooks.logger.interval': 1,
                        'randomness.deterministic': True, 'val_cfg': None,
                        'val_dataloader': None, 'val_evaluator': None})
        runner = build_runner(cfg, work_dir, resume=resume, cfg_options=options,
                              no_validate=True, pin_memory=False)
        if resume is None and work_dir.endswith('b'):
            runner.train_loop._max_iters = 6  # the "crash": stop after the iter_6 checkpoint
        runner.train()
        return {r['step']: r['loss'] for r in read_scalars(work_dir) if 'loss' in r}

    straight = train(str(tmp_path / 'a'))
    train(str(tmp_path / 'b'))
    resumed = train(str(tmp_path / 'b'), resume=str(tmp_path / 'b' / 'iter_6.pth'))
    assert sorted(resumed) == list(range(7, 13))
    assert [resumed[i] for i in range(7, 13)] == [straight[i] for i in range(7, 13)]


DEMO_DET = 'demo/eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py'


@pytest.fixture(scope='module')
def det_data(tmp_path_factory):
    from projects.eva.demo.synthetic_detection import make_coco_instances
    root = str(tmp_path_factory.mktemp('det'))
    make_coco_instances(root, 'train', num=8, seed=0, max_shapes=2)
    make_coco_instances(root, 'val', num=2, seed=1, max_shapes=2)
    return root


def _options(root, name):
    ann = osp.join(root, 'annotations', 'instances_{}.json')
    return {'visualizer.name': name,  # the visualizer is a named singleton: one per runner
            'train_dataloader.dataset.data_root': root + '/',
            'val_dataloader.dataset.data_root': root + '/',
            'test_dataloader.dataset.data_root': root + '/',
            'val_evaluator.ann_file': ann.format('val'),
            'test_evaluator.ann_file': ann.format('val')}


def _det_options(root, **extra):
    import uuid
    options = _options(root, f'rel_{uuid.uuid4().hex}')
    options.update({'train_cfg.max_iters': 3, 'train_cfg.val_interval': 1000,
                    'train_dataloader.batch_size': 2, 'default_hooks.logger.interval': 1})
    options.update(extra)
    return options


def _det_model():
    import projects.eva.detection  # noqa: F401
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from projects.eva.demo.utils import config_path
    init_default_scope('mmdet')
    torch.manual_seed(0)
    return MODELS.build(Config.fromfile(config_path(DEMO_DET)).model).eval()


def test_an_image_without_detections_next_to_one_with_detections():
    """score_thr=0.99 on an under-trained model: some images of a batch keep no box.
    predict_mask guarded only an all-empty batch and failed in mmdet's mask head with
    "chunk expects chunks to be greater than 0, got: 0"."""
    from mmengine.structures import InstanceData
    model = _det_model()
    metas = [dict(img_shape=(128, 128), ori_shape=(128, 128), scale_factor=(1., 1.))] * 3
    feats = tuple(torch.randn(3, 32, 128 // s, 128 // s) for s in (4, 8, 16, 32))

    def boxes(n):
        return InstanceData(bboxes=torch.tensor([[10., 10., 60., 70.]] * n).reshape(n, 4),
                            labels=torch.zeros(n, dtype=torch.long), scores=torch.ones(n) * .99)

    with torch.no_grad():
        out = model.roi_head.predict_mask(feats[:model.roi_head.mask_roi_extractor[0].num_inputs],
                                          metas, [boxes(0), boxes(2), boxes(0)], rescale=True)
    assert [tuple(r.masks.shape) for r in out] == [(0, 128, 128), (2, 128, 128), (0, 128, 128)]
    assert out[0].masks.dtype == out[1].masks.dtype == torch.bool


@pytest.mark.slow
def test_amp_detection_trains_and_tests_on_cpu(det_data, tmp_path):
    """--amp on CPU: fp16 autocast in training, bf16 autocast (mmengine's TestLoop, the only
    CPU dtype it takes) in tools/test.py --amp. mmcv's CPU nms failed with
    "expected scalar type Float but found Half"; test --amp did nothing."""
    from projects.eva.engine.amp import AnyDeviceAmpOptimWrapper
    runner = runner_for(DEMO_DET, tmp_path / 'w', _det_options(
        det_data, **{'train_cfg.max_iters': 1, 'train_dataloader.batch_size': 1}), amp=True)
    runner.train()
    assert type(runner.optim_wrapper) is AnyDeviceAmpOptimWrapper
    # score_thr 0 so the 1-iteration model keeps boxes for the metric
    test = runner_for(DEMO_DET, tmp_path / 't', _det_options(
        det_data, **{'model.test_cfg.rcnn.score_thr': 0.0}), mode='test',
        checkpoint=str(tmp_path / 'w' / 'iter_1.pth'), amp=True)
    seen = []
    test.model.backbone.register_forward_hook(
        lambda m, i, o: seen.append((torch.is_autocast_enabled('cpu'), o[0].dtype)))
    metrics = test.test()
    assert seen and all(on and dtype == torch.bfloat16 for on, dtype in seen), seen
    assert 'coco/bbox_mAP' in metrics


@pytest.mark.slow
def test_nan_stops_detection_training(det_data, tmp_path):
    """Detection had no FiniteLossHook: with lr=1e10 it trained on through NaN losses, exited 0
    and saved all-NaN checkpoints over the last good one."""
    assert_nan_run_stops_and_saves_nothing_non_finite(
        DEMO_DET, tmp_path / 'w', _det_options(det_data, **{'train_cfg.max_iters': 6}), iters=6)


def test_checkpoint_of_another_task_is_an_error_for_tools_test(det_data, tmp_path):
    """The segmentation / classification demo checkpoint on the detection config used to load
    nothing, exit 0 and report mAP 0.000."""
    from projects.eva.models import EVAViT
    vit = EVAViT(dict(embed_dims=48, num_layers=2, num_heads=3, feedforward_channels=96),
                 img_size=56, patch_size=14)
    path = tmp_path / 'classifier.pth'
    torch.save({'state_dict': {**{f'backbone.{k}': v for k, v in vit.state_dict().items()},
                               'head.layers.head.weight': torch.zeros(10, 48)}}, path)
    test = runner_for(DEMO_DET, tmp_path / 't', _det_options(det_data), mode='test',
                      checkpoint=str(path))
    with pytest.raises(ValueError) as err:
        test.test()
    msg = str(err.value)
    assert f'{path} does not fit the model CascadeRCNN' in msg, msg
    assert 'of another shape' in msg and "'head': 1" in msg and 'converter format' in msg
    # the right model with other class counts: testing needs every shape to fit
    model = _det_model()
    sd = {k: v for k, v in model.state_dict().items()}
    sd['roi_head.bbox_head.0.fc_cls.weight'] = torch.zeros(81, 64)
    torch.save({'state_dict': sd}, tmp_path / 'coco80.pth')
    test._load_from = str(tmp_path / 'coco80.pth')  # the same runner (nothing was loaded)
    with pytest.raises(ValueError, match=r'fc_cls.weight: checkpoint \(81, 64\) vs model'):
        test.test()


def test_tools_test_tta_loads_the_detector_checkpoint(det_data, tmp_path):
    """``tools/test.py --tta`` wraps the detector in a TTA model (keys ``module.*``); the
    checkpoint check once compared the detector's checkpoint with that wrapper, found 0 of
    205 tensors and refused the README's --tta command. It must look inside, as mmengine's
    loader does: the right checkpoint loads, another task's is still refused."""
    model = _det_model()
    good = tmp_path / 'det.pth'
    torch.save({'state_dict': model.state_dict()}, good)
    test = runner_for(DEMO_DET, tmp_path / 't', _det_options(det_data), mode='test',
                      checkpoint=str(good), tta=True)
    assert type(test.model).__name__ == 'EVADetTTAModel'
    test.load_checkpoint(str(good))  # raised ValueError: fills 0 of the model's tensors
    inner = test.model.module.state_dict()
    assert inner.keys() == model.state_dict().keys()
    for k, v in model.state_dict().items():  # the weights arrived, not just no error
        torch.testing.assert_close(inner[k], v, msg=k)
    bad = tmp_path / 'other.pth'
    torch.save({'state_dict': {'head.fc.weight': torch.zeros(10, 48)}}, bad)
    test._load_from = str(bad)
    with pytest.raises(ValueError, match=f'{bad} does not fit the model CascadeRCNN'):
        test.load_checkpoint(str(bad))


def test_demo_config_uses_the_checked_coco_dataset(det_data, tmp_path):
    import shutil
    from mmdet.registry import DATASETS
    from projects.eva.runner import runner_config
    cfg = runner_config(osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
                               DEMO_DET), work_dir=str(tmp_path),
                      cfg_options=_det_options(det_data))
    root = str(tmp_path / 'data')
    shutil.copytree(det_data, root)
    ann = osp.join(root, 'annotations', 'instances_train.json')
    with open(ann) as f:
        coco = json.load(f)
    coco['annotations'][0]['bbox'][3] = 0.0  # a zero-height box, as COCO's annotation 918
    with open(ann, 'w') as f:
        json.dump(coco, f)
    init_default_scope('mmdet')
    dataset = dict(cfg.train_dataloader.dataset, data_root=root)
    with pytest.raises(ValueError, match=f"{ann}: 1 bad annotation.*annotation id "
                                         f"{coco['annotations'][0]['id']}: degenerate bbox"):
        DATASETS.build(dataset)


def test_empty_coco_annotation_list_is_named(tmp_path):
    """"annotations": [] failed in mmengine's serialisation with "need at least one array to
    concatenate" (every image filtered out by filter_empty_gt)."""
    path = tmp_path / 'empty_anns.json'
    path.write_text(json.dumps(dict(images=[dict(id=1, width=8, height=8, file_name='a.jpg')],
                                    annotations=[], categories=[dict(id=1, name='a')])))
    with pytest.raises(ValueError, match=rf'{path}: the annotation list is empty '
                                         r'\("annotations": \[\] for 1 images\)'):
        _det_dataset('CheckedCocoDataset', str(path))
    # annotations of other classes only: no training image is left
    path.write_text(json.dumps(dict(
        images=[dict(id=1, width=8, height=8, file_name='a.jpg')],
        annotations=[dict(id=1, image_id=1, category_id=2, bbox=[1, 1, 4, 4], area=16,
                          iscrowd=0)],
        categories=[dict(id=1, name='a'), dict(id=2, name='z')])))
    import projects.eva.detection  # noqa: F401
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    with pytest.raises(ValueError, match=rf"{path}: no training image left: none of its 1 "
                                         r"images has an annotation of the classes \['a'\]"):
        DATASETS.build(dict(type='CheckedCocoDataset', ann_file=str(path),
                            data_prefix=dict(img=''), metainfo=dict(classes=('a',)),
                            filter_cfg=dict(filter_empty_gt=True), pipeline=[]))


@pytest.mark.parametrize('lvis', [False, True])
def test_no_detection_on_any_image_reports_zeros_not_nothing(tmp_path, lvis):
    """A detector that keeps no box on any image (score_thr above every score, a wrong
    checkpoint): mmdet's CocoMetric logged 'The testing results of the whole dataset is
    empty' and returned no metric, so tools/test.py exited 0 with nothing. Every metric is 0
    now. The demo config's evaluator goes through add_safety as in tools/test.py."""
    import numpy as np
    from mmdet.registry import METRICS

    import projects.eva.detection  # noqa: F401
    from projects.eva.demo.utils import config_path
    from projects.eva.engine.safety import add_safety
    from projects.eva.runner import runner_config
    ann = _coco_json(tmp_path / 'anns.json', lvis=lvis)
    cfg = add_safety(runner_config(config_path(DEMO_DET)), 'test')
    evaluator = dict(cfg.test_evaluator, ann_file=ann)
    if lvis:
        evaluator['type'] = 'EVALVISMetric'
    init_default_scope('mmdet')
    metric = METRICS.build(evaluator)
    metric.dataset_meta = dict(classes=('a', 'b'))
    for img_id, (h, w) in ((1, (80, 100)), (2, (50, 50))):
        metric.process({}, [dict(img_id=img_id, ori_shape=(h, w), pred_instances=dict(
            bboxes=torch.zeros(0, 4), scores=torch.zeros(0), labels=torch.zeros(0).long(),
            masks=torch.zeros(0, h, w, dtype=torch.bool)))])
    out = metric.evaluate(size=2)
    prefix = 'lvis' if lvis else 'coco'
    items = (['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf'] if lvis else
             ['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l'])
    assert out == {f'{prefix}/{m}_{k}': 0.0 for m in ('bbox', 'segm') for k in items}, out
    assert np.isfinite(list(out.values())).all()
