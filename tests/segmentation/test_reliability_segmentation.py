"""Segmentation faults: missing / corrupt / mis-sized label maps, label values outside the
classes, NaN."""
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image

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




DEMO_SEG = 'demo/eva-mask2former_vit-tiny-adapter-p16_1xb8-160it_shapes-seg-128.py'


@pytest.fixture(scope='module')
def seg_data(tmp_path_factory):
    from projects.eva.demo.synthetic_segmentation import make_segmentation_shapes
    root = str(tmp_path_factory.mktemp('seg'))
    make_segmentation_shapes(root, num_train=4, num_val=2, size=64, seed=0)
    return root


def _seg_options(root):
    return {f'{loader}.dataset.data_root': root
            for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')}


def test_16_bit_label_map_values_are_checked_as_stored(tmp_path):
    """mmseg casts label maps to uint8: a 16-bit 258 counted as class 2 (mIoU 35.09 -> 29.22,
    exit 0) and 301 was reported as '45'. The stored values are named; a 16-bit map whose
    values fit is read as before."""
    import cv2

    import projects.eva.segmentation  # noqa: F401
    from mmseg.registry import TRANSFORMS
    init_default_scope('mmseg')
    ok, bad = np.ones((16, 20), np.uint16), np.ones((16, 20), np.uint16)
    ok[0, :4] = [0, 2, 3, 255]
    bad[0, :3] = [258, 301, 3]
    for name, label in (('ok.png', ok), ('bad.png', bad)):
        assert cv2.imwrite(str(tmp_path / name), label)
        assert cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    for backend in ('pillow', 'cv2'):
        load = TRANSFORMS.build(dict(type='CheckedLoadAnnotations', imdecode_backend=backend))
        out = load(dict(seg_map_path=str(tmp_path / 'ok.png'), img_path='ok.jpg',
                        ori_shape=(16, 20), seg_fields=[], reduce_zero_label=False))
        assert out['gt_seg_map'].dtype == np.uint8
        np.testing.assert_array_equal(out['gt_seg_map'], ok)
        with pytest.raises(ValueError, match=r'label map .*bad.png \(for image bad.jpg\) holds '
                                             r'values \[258, 301\] .*\(as \[2, 45\]\)'):
            load(dict(seg_map_path=str(tmp_path / 'bad.png'), img_path='bad.jpg',
                      ori_shape=(16, 20), seg_fields=[], reduce_zero_label=False))


@pytest.mark.parametrize('mode', ['predict', 'loss'])
def test_label_values_outside_the_classes_name_file_and_values(seg_data, tmp_path, mode,
                                                               one_thread):
    """4 classes + ignore 255: a label map holding 7 and 9 gave a silently wrong mIoU in test
    (values >= num_classes fall outside IoUMetric's histogram) and an IndexError deep in
    mmdet's Hungarian assigner in training."""
    import shutil

    import projects.eva.segmentation  # noqa: F401
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmseg.registry import DATASETS, MODELS
    from projects.eva.demo.utils import config_path
    root = str(tmp_path / 'data')
    shutil.copytree(seg_data, root)
    cfg = Config.fromfile(config_path(DEMO_SEG))
    init_default_scope('mmseg')
    loader = cfg.val_dataloader if mode == 'predict' else cfg.train_dataloader
    ds = DATASETS.build(dict(loader.dataset, data_root=root))
    path = ds.get_data_info(0)['seg_map_path']
    label = np.array(Image.open(path))
    i, j = np.indices(label.shape)  # 8-px blocks of 7 and 9: any crop holds both
    label[:] = np.where((i // 8 + j // 8) % 2 == 0, 7, 9)
    label[0, 0] = 255  # the ignore index is fine
    Image.fromarray(label).save(path)
    import torch
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    batch = pseudo_collate([ds[0]])
    with pytest.raises(ValueError, match=rf'label map {path}: values \[7, 9\] are not class '
                                         r'ids in \[0, 4\) nor the ignore index 255'):
        if mode == 'predict':
            model.eval().test_step(batch)
        else:
            model.train()
            data = model.data_preprocessor(batch, True)
            model.loss(**data)
    good = pseudo_collate([ds[1]])  # the other label maps are fine
    model.eval().test_step(good)


def test_non_finite_forward_pass_is_a_named_floating_point_error(seg_data, one_thread):
    """Segmentation with --amp diverging (fp16 overflow: inf / NaN features) ended in scipy's
    "matrix contains invalid numeric entries" inside mmdet's Hungarian matcher; every other
    task gives a FloatingPointError naming the iteration."""
    import projects.eva.segmentation  # noqa: F401
    import torch
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.logging import MessageHub
    from mmseg.registry import DATASETS, MODELS
    from projects.eva.demo.utils import config_path
    cfg = Config.fromfile(config_path(DEMO_SEG))
    init_default_scope('mmseg')
    ds = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=seg_data))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    data = model.data_preprocessor(pseudo_collate([ds[0]]), True)
    MessageHub.get_current_instance().update_info('iter', 6)

    def overflow(module, args, out):  # what an fp16 overflow leaves in the features
        return type(out)(torch.full_like(f, float('inf')) * (-1) ** i for i, f in
                         enumerate(out))
    handle = model.backbone.register_forward_hook(overflow)
    with pytest.raises(FloatingPointError, match=r'non-finite predictions at iteration 7: '
                                                 r'the backbone features \(levels \[0, 1, 2, 3\]'
                                                 r'\) hold NaN/inf.*--amp'):
        model.loss(**data)
    handle.remove()
    assert torch.isfinite(sum(model.loss(**data).values())).all()  # finite input: trains


@pytest.mark.slow
def test_nan_stops_segmentation_training(seg_data, tmp_path, one_thread):
    """With lr=1e10 segmentation stopped only by accident, in scipy's matcher ("matrix
    contains invalid numeric entries"); now FiniteLossHook names the update."""
    from reliability_tasks import assert_nan_run_stops_and_saves_nothing_non_finite
    options = _seg_options(seg_data)
    options.update({'train_cfg.max_iters': 6, 'train_dataloader.batch_size': 2,
                    'train_dataloader.num_workers': 0,
                    'train_dataloader.persistent_workers': False})
    assert_nan_run_stops_and_saves_nothing_non_finite(DEMO_SEG, tmp_path / 'w', options, 6)
