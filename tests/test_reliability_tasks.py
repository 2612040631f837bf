"""Reliability across tasks: AMP loss-scaler resume on CPU, fp16 overflow vs FiniteLossHook,
checked COCO/LVIS annotations, clear errors for bad video / segmentation / CLIP / detection
inputs."""
import json
import os
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset
from mmengine.model import BaseModel
from mmengine.registry import DATASETS as ENGINE_DATASETS
from mmengine.registry import MODELS as ENGINE_MODELS
from mmengine.registry import init_default_scope
from PIL import Image

from projects.eva.runner import load_config

# --------------------------------------------------------------------------------------------
# 1. AMP on CPU: loss-scaler and scheduler state resume; overflow is not a NaN loss


@ENGINE_MODELS.register_module(force=True)
class _AmpToyModel(BaseModel):
    """8 -> 8 linear map fitted to a fixed permutation of its input (fp16 under autocast)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, inputs, data_samples=None, mode='loss'):
        x = torch.stack(inputs)
        return dict(loss=(self.fc(x).float() - x.flip(-1)).pow(2).mean())


@ENGINE_DATASETS.register_module(force=True)
class _AmpToyData(Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, idx):
        g = torch.Generator().manual_seed(idx)
        return dict(inputs=torch.randn(8, generator=g))


class _Recorder:
    """Per-iteration scaler state, lr, loss and a weight checksum (after the step)."""

    def __init__(self):
        from mmengine.hooks import Hook

        rec = self

        class H(Hook):
            priority = 'LOWEST'

            def before_train(self, runner):
                rec.start = dict(iter=runner.iter,
                                 scaler=runner.optim_wrapper.loss_scaler.state_dict())

            def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
                ow = runner.optim_wrapper
                rec.rows[runner.iter + 1] = dict(
                    scale=ow.loss_scaler.get_scale(),
                    tracker=ow.loss_scaler._get_growth_tracker(),
                    lr=ow.get_lr()['lr'][0], loss=float(outputs['loss'].detach()),
                    weight=runner.model.fc.weight.detach().clone())

        self.hook, self.rows, self.start = H(), {}, None


class _Crash(RuntimeError):
    pass


def _amp_config(tmp_path):
    path = tmp_path / 'toy_amp.py'
    path.write_text(
        "model = dict(type='_AmpToyModel')\n"
        "train_dataloader = dict(batch_size=4, num_workers=0, collate_fn=dict("
        "type='pseudo_collate'), sampler=dict(type='InfiniteSampler', shuffle=True),"
        " dataset=dict(type='_AmpToyData'))\n"
        "train_cfg = dict(type='IterBasedTrainLoop', max_iters=12)\n"
        "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))\n"
        "param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,"
        " end=4), dict(type='CosineAnnealingLR', by_epoch=False, begin=4, end=12, T_max=8)]\n"
        "default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=4,"
        " by_epoch=False), logger=dict(type='LoggerHook', interval=1))\n"
        "custom_hooks = [dict(type='FiniteLossHook')]\n"
        "randomness = dict(seed=0, deterministic=True)\n"
        "custom_imports = dict(imports=['projects.eva.engine'], allow_failed_imports=False)\n")
    return str(path)


def _amp_runner(config, work_dir, resume=False, crash_at=None, max_iters=12):
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    cfg = load_config(config, work_dir=str(work_dir), amp=True, cfg_options={
        'optim_wrapper.loss_scale': dict(init_scale=2.**18, growth_interval=3),
        'train_cfg.max_iters': max_iters})
    cfg.resume = resume
    runner = Runner.from_cfg(cfg)
    rec = _Recorder()
    runner.register_hook(rec.hook)
    if crash_at is not None:
        class CrashHook(Hook):  # the process dies after checkpoint iter_4, inside iter 6
            def before_train_iter(self, runner, batch_idx, data_batch=None):
                if runner.iter + 1 == crash_at:
                    raise _Crash(f'killed at iteration {crash_at}')
        runner.register_hook(CrashHook())
    return runner, rec


def test_amp_on_cpu_resumes_loss_scaler_and_scheduler_exactly(tmp_path):
    from projects.eva.engine.amp import AnyDeviceAmpOptimWrapper
    config = _amp_config(tmp_path)
    full, rec_full = _amp_runner(config, tmp_path / 'full')
    full.train()
    assert type(full.optim_wrapper) is AnyDeviceAmpOptimWrapper  # --amp picked it on CPU
    rows = rec_full.rows
    assert sorted(rows) == list(range(1, 13))
    # the scaler really worked: fp16 gradients overflowed at 2**18 and 2**17 (steps skipped,
    # scale halved), the scale grew back after 3 clean steps and overflowed again later
    scales = [rows[i]['scale'] for i in range(1, 13)]
    assert scales[:2] == [2.**17, 2.**16], scales
    assert (np.diff(scales) > 0).sum() >= 1 and (np.diff(scales) < 0).sum() >= 2, scales
    # the run killed after iter_4.pth (inside iteration 6) resumes with the saved scaler
    cut, _ = _amp_runner(config, tmp_path / 'cut', crash_at=6)
    with pytest.raises(_Crash):
        cut.train()
    saved = torch.load(tmp_path / 'cut' / 'iter_4.pth', weights_only=True)
    scaler = saved['optimizer']['loss_scaler']
    assert scaler['scale'] == rows[4]['scale'] and scaler['_growth_tracker'] == rows[4]['tracker']
    assert scaler['scale'] != 2.**18 and scaler['_growth_tracker'] > 0  # not a fresh scaler
    resumed, rec = _amp_runner(config, tmp_path / 'cut', resume=True)
    resumed.train()
    assert rec.start['iter'] == 4 and rec.start['scaler'] == scaler
    assert sorted(rec.rows) == list(range(5, 13))
    lrs = [rows[i]['lr'] for i in range(5, 13)]
    assert len(set(lrs)) >= 7  # the cosine schedule moves every iteration
    for i in range(5, 13):
        a, b = rows[i], rec.rows[i]
        assert (b['scale'], b['tracker'], b['lr']) == (a['scale'], a['tracker'], a['lr']), i
        assert b['loss'] == pytest.approx(a['loss'], abs=1e-6), i
        torch.testing.assert_close(b['weight'], a['weight'], rtol=0, atol=1e-6)


def test_fp16_overflow_is_a_skipped_step_not_a_nan_loss(tmp_path):
    """FiniteLossHook is registered (config): gradient overflow at the huge initial scale is
    handled by the scaler (step skipped, weights unchanged, scale halved), training goes on."""
    runner, rec = _amp_runner(_amp_config(tmp_path), tmp_path / 'w', max_iters=3)
    before = runner.model.fc.weight.detach().clone()
    runner.train()  # FiniteLossHook would raise FloatingPointError on a non-finite loss
    assert any(type(h).__name__ == 'FiniteLossHook' for h in runner.hooks)
    assert [rec.rows[i]['scale'] for i in (1, 2, 3)] == [2.**17, 2.**16, 2.**16]
    assert torch.equal(rec.rows[1]['weight'], before)  # overflow: step skipped
    assert torch.equal(rec.rows[2]['weight'], before)
    assert not torch.equal(rec.rows[3]['weight'], before)  # scale fits: a real step
    assert all(np.isfinite(r['loss']) for r in rec.rows.values())


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


# --------------------------------------------------------------------------------------------
# 3. Clear errors for bad inputs of the other tasks


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    from projects.eva.demo.synthetic_video import make_moving_shapes
    root = str(tmp_path_factory.mktemp('videos'))
    ann = make_moving_shapes(root, {'train': 1}, size=32, frames=8)['train']
    return root, ann


def _video_dataset(ann_file, root):
    import projects.eva.video  # noqa: F401
    from mmaction.registry import DATASETS
    init_default_scope('mmaction')
    pipeline = [dict(type='CheckedDecordInit'),
                dict(type='UniformSample', clip_len=4, test_mode=True),
                dict(type='CheckedDecordDecode'), dict(type='FormatShape', input_format='NCTHW'),
                dict(type='PackActionInputs')]
    return DATASETS.build(dict(type='CheckedVideoDataset', ann_file=ann_file,
                               data_prefix=dict(video=root), pipeline=pipeline))


def test_video_missing_corrupt_or_truncated_file_is_named(videos, tmp_path):
    import shutil
    src_root, src_ann = videos
    root = str(tmp_path / 'v')
    shutil.copytree(src_root, root)
    ds = _video_dataset(osp.join(root, 'train_list_videos.txt'), root)
    assert tuple(ds[0]['inputs'].shape) == (1, 3, 4, 32, 32)  # good videos still load
    name = [ds.get_data_info(i)['filename'] for i in range(len(ds))]
    os.remove(name[1])
    with pytest.raises(FileNotFoundError, match=f'video not found: {name[1]}'):
        ds[1]
    with open(name[2], 'wb') as f:
        f.write(b'\x00not a video' * 60)
    with pytest.raises(RuntimeError, match=f'cannot open video {name[2]}'):
        ds[2]
    with open(name[3], 'rb') as f:
        data = f.read()
    with open(name[3], 'wb') as f:  # cut in half, as by an interrupted download
        f.write(data[:len(data) // 2])
    with pytest.raises(RuntimeError, match=f'video {name[3]}'):
        ds[3]


def test_video_annotation_list_missing_empty_or_malformed(videos, tmp_path):
    root, _ = videos
    with pytest.raises(FileNotFoundError, match='video annotation list not found: .*nope.txt'):
        _video_dataset(str(tmp_path / 'nope.txt'), root)
    empty = tmp_path / 'empty.txt'
    empty.write_text('\n')
    with pytest.raises(ValueError, match=f'{empty}: the video annotation list is empty'):
        _video_dataset(str(empty), root)
    gap = tmp_path / 'gap.txt'
    gap.write_text('videos/train/left_0000.mp4 0\n\nvideos/train/up_0000.mp4 2\n')
    with pytest.raises(ValueError, match=rf'{gap}: blank line\(s\) \[2\]'):
        _video_dataset(str(gap), root)
    bad = tmp_path / 'bad.txt'
    bad.write_text('videos/train/left_0000.mp4 0 extra\n')
    with pytest.raises(ValueError, match=f'{bad}: cannot parse the list'):
        _video_dataset(str(bad), root)


def test_segmentation_label_map_missing_corrupt_or_of_another_size(tmp_path):
    import projects.eva.segmentation  # noqa: F401
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    (tmp_path / 'img').mkdir()
    (tmp_path / 'ann').mkdir()
    for name in 'abcd':
        Image.fromarray(np.zeros((16, 20, 3), np.uint8)).save(tmp_path / 'img' / f'{name}.jpg')
    Image.fromarray(np.ones((16, 20), np.uint8)).save(tmp_path / 'ann' / 'a.png')
    Image.fromarray(np.ones((8, 10), np.uint8)).save(tmp_path / 'ann' / 'b.png')  # half size
    (tmp_path / 'ann' / 'd.png').write_bytes(b'not a png')                        # c: none

    def build(pipeline):
        return DATASETS.build(dict(type='BaseSegDataset', data_root=str(tmp_path),
                                   data_prefix=dict(img_path='img', seg_map_path='ann'),
                                   img_suffix='.jpg', seg_map_suffix='.png',
                                   metainfo=dict(classes=('bg', 'fg')), pipeline=pipeline,
                                   test_mode=True))

    ds = build([dict(type='LoadImageFromFile'), dict(type='CheckedLoadAnnotations'),
                dict(type='PackSegInputs')])
    assert [osp.basename(ds.get_data_info(i)['img_path']) for i in range(4)] == \
        ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg']
    assert tuple(ds[0]['data_samples'].gt_sem_seg.data.shape) == (1, 16, 20)
    with pytest.raises(ValueError, match=r'label map .*b.png is 10x8 \(WxH\) but its image '
                                         r'.*b.jpg is 20x16'):
        ds[1]
    with pytest.raises(FileNotFoundError, match=r'label map not found: .*c.png'):
        ds[2]
    with pytest.raises(ValueError, match=r'cannot decode label map .*d.png'):
        ds[3]
    # the test pipelines load the label after resizing the image: still fine
    test = build([dict(type='LoadImageFromFile'), dict(type='Resize', scale=(40, 32)),
                  dict(type='CheckedLoadAnnotations'), dict(type='PackSegInputs')])
    assert tuple(test[0]['data_samples'].gt_sem_seg.data.shape) == (1, 16, 20)


def test_clip_missing_image_and_empty_caption_table(tmp_path):
    import projects.eva.clip  # noqa: F401
    from mmpretrain.registry import DATASETS
    init_default_scope('mmpretrain')
    (tmp_path / 'images').mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'images' / 'a.png')

    def build(text):
        (tmp_path / 'captions.tsv').write_text(text)
        return DATASETS.build(dict(
            type='CsvImageTextDataset', ann_file=str(tmp_path / 'captions.tsv'),
            data_prefix=str(tmp_path), pipeline=[dict(type='LoadImageFromFile'),
                                                 dict(type='PackInputs', algorithm_keys=['text'])]))

    ds = build('filepath\ttitle\nimages/a.png\ta red square\nimages/gone.png\ta blue circle\n')
    assert ds[0]['data_samples'].text == 'a red square'
    with pytest.raises(FileNotFoundError, match=r'images/gone.png'):
        ds[1]
    table = tmp_path / 'captions.tsv'
    with pytest.raises(ValueError, match=f'caption table is empty: {table}'):
        build('')
    with pytest.raises(ValueError, match=f'caption table has a header but no rows: {table}'):
        build('filepath\ttitle\n')
    with pytest.raises(ValueError, match=f'{table}, line 3: no image path or no caption'):
        build('filepath\ttitle\nimages/a.png\tok\nimages/a.png\n')


def test_detection_input_size_the_backbone_cannot_take_is_named():
    """Our configs pad every batch to a multiple of 32 (and to a fixed square), so any image
    size works; a config that pads to a size the patch does not divide gets the size named."""
    import copy

    import projects.eva.detection  # noqa: F401
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    init_default_scope('mmdet')
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
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


def test_iteration_based_resume_repeats_the_uninterrupted_losses(tmp_path, one_thread):
    """Detection (iteration-based loop, InfiniteSampler, drop path, RPN/RoI random sampling):
    12 iterations straight vs 6 + ``--resume`` from iter_6 give the same losses bit for bit.
    Without TorchRNGStateHook (added by tools/train.py) they differed by up to 5e-3."""
    from projects.eva.demo.synthetic_detection import make_coco_instances
    from projects.eva.demo.utils import config_path, read_scalars
    from projects.eva.demo.detection import _options
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
