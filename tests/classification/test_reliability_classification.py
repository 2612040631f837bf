"""Classification faults: unreadable, empty or missing images, empty folders, batches of
mixed sizes, NaN."""
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

def test_bad_images_and_empty_folders_name_the_file(tmp_path):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS
    import projects.eva.pretrain  # noqa: F401
    init_default_scope('mmpretrain')
    pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
    (tmp_path / 'empty').mkdir()
    with pytest.raises(RuntimeError, match='empty'):
        DATASETS.build(dict(type='CustomDataset', data_root=str(tmp_path / 'empty'),
                            with_label=False, pipeline=pipeline))
    root = tmp_path / 'imgs'
    root.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / 'good.png')
    (root / 'broken.png').write_bytes(b'not a png at all')
    ds = DATASETS.build(dict(type='CustomDataset', data_root=str(root), with_label=False,
                             pipeline=pipeline, test_mode=True))
    names = [osp.basename(ds.get_data_info(i)['img_path']) for i in range(len(ds))]
    with pytest.raises(Exception, match='broken.png'):
        ds[names.index('broken.png')]
    os.remove(root / 'good.png')  # listed, then deleted: a missing file is named too
    with pytest.raises(FileNotFoundError, match='good.png'):
        ds[names.index('good.png')]




def _image(path, size):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), 128, np.uint8)).save(path)


def test_zero_byte_image_is_named(tmp_path):
    import projects.eva.engine  # noqa: F401  (names bad image files)
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS
    init_default_scope('mmpretrain')
    root = tmp_path / 'imgs'
    _image(root / 'good.png', 8)
    (root / 'zero.png').write_bytes(b'')  # e.g. an interrupted copy
    ds = DATASETS.build(dict(type='CustomDataset', data_root=str(root), with_label=False,
                             pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')],
                             test_mode=True))
    names = [osp.basename(ds.get_data_info(i)['img_path']) for i in range(len(ds))]
    with pytest.raises(ValueError, match=r'image file is empty \(0 bytes\): .*zero.png'):
        ds[names.index('zero.png')]
    assert tuple(ds[names.index('good.png')]['inputs'].shape) == (3, 8, 8)


def test_tiny_image_in_a_val_pipeline_without_resize_is_named_at_batching(tmp_path):
    """A val pipeline without a resize (as the demo's had: the digits are written at 56 px):
    a stray 1x1 image made default_collate fail with "Trying to resize storage that is not
    resizable" (in a worker) or "stack expects each tensor to be equal size"."""
    from mmengine.runner import Runner

    from projects.eva.demo.utils import config_path
    from projects.eva.engine.safety import add_safety
    from projects.eva.runner import runner_config
    root = tmp_path / 'digits'
    _image(root / 'val' / '0' / 'a.png', 56)
    _image(root / 'val' / '1' / 'b.png', 56)
    _image(root / 'val' / '1' / 'tiny.png', 1)
    cfg = runner_config(
        config_path('demo/eva-cls_vit-tiny-p14_1xb64-80e_digits.py'),
        work_dir=str(tmp_path / 'w'),
        cfg_options={'val_dataloader.dataset.data_root': str(root),
                     'val_dataloader.dataset.pipeline': [dict(type='LoadImageFromFile'),
                                                         dict(type='PackInputs')],
                     'val_dataloader.num_workers': 0,
                     'val_dataloader.persistent_workers': False})
    add_safety(cfg, 'test')
    assert cfg.val_dataloader.collate_fn.type == 'eva_default_collate'
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
    loader = Runner.build_dataloader(cfg.val_dataloader)
    with pytest.raises(ValueError, match=r"cannot batch inputs of different sizes "
                                         r"\(\(3, 56, 56\): \[.*a.png.*b.png.*\]; "
                                         r"\(3, 1, 1\): \[.*tiny.png'\]\)"):
        next(iter(loader))


def test_a_class_folder_renamed_in_val_is_named_in_training_and_testing(tmp_path):
    """val/3 -> val/three: the sorted folder names shift the class ids and the demo scored
    24.3 % instead of 73.3 %, exit 0. Training (val vs train: DatasetClassesHook) and
    tools/test.py (test set vs the checkpoint's dataset_meta: CheckpointFitHook) stop before
    any image is read."""
    import torch

    from projects.eva.runner import build_runner
    root = tmp_path / 'digits'
    for split, names in (('train', ['0', '1', '2', '3']), ('val', ['0', '1', '2', 'three'])):
        for name in names:
            _image(root / split / name / 'a.png', 56)
    config = 'configs/demo/eva-cls_vit-tiny-p14_1xb64-80e_digits.py'
    loaders = {f'{loader}.{key}': value for loader in ('train_dataloader', 'val_dataloader')
               for key, value in (('num_workers', 0), ('persistent_workers', False))}
    runner = build_runner(config, str(tmp_path / 'w'), pin_memory=False, cfg_options=dict(
        loaders, **{'train_dataloader.dataset.dataset.data_root': str(root),
                    'val_dataloader.dataset.data_root': str(root),
                    'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1}))
    with pytest.raises(ValueError, match=r"the classes of the validation set CustomDataset\(.*"
                                         r"digits.*val.*\) differ from those of the training "
                                         r"set .*id 3: '3' vs 'three'.*only in the validation "
                                         r"set .*\['three'\]"):
        runner.train()
    assert runner.iter == 0
    ckpt = tmp_path / 'epoch_1.pth'  # trained on train/: its classes are saved with it
    runner = build_runner(config, str(tmp_path / 't'), mode='test', checkpoint=str(ckpt),
                          cfg_options={'test_dataloader.dataset.data_root': str(root),
                                       'test_dataloader.num_workers': 0,
                                       'test_dataloader.persistent_workers': False})
    torch.save({'state_dict': runner.model.state_dict(),
                'meta': {'dataset_meta': {'classes': ['0', '1', '2', '3']}}}, ckpt)
    with pytest.raises(ValueError, match=rf"{ckpt} was trained on 4 classes .* but the test "
                                         r"dataset has 4 classes .*'3' vs 'three'"):
        runner.test()  # CheckpointFitHook's class check


@pytest.mark.slow
def test_nan_stops_classification_training(tmp_path):
    from reliability_tasks import assert_nan_run_stops_and_saves_nothing_non_finite
    root = tmp_path / 'digits'
    for split in ('train', 'val'):
        for i in range(8):
            _image(root / split / str(i % 2) / f'{i}.png', 56)
    assert_nan_run_stops_and_saves_nothing_non_finite(
        'demo/eva-cls_vit-tiny-p14_1xb64-80e_digits.py', tmp_path / 'w',
        {'train_dataloader.dataset.dataset.data_root': str(root),
         'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 0,
         'train_dataloader.persistent_workers': False, 'train_cfg.max_epochs': 1}, iters=4)
