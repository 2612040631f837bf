"""Video faults: missing, corrupt or truncated videos; bad annotation lists."""
import os
import os.path as osp

import pytest
from mmengine.registry import init_default_scope

@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    from projects.eva.demo.synthetic_video import make_moving_shapes
    root = str(tmp_path_factory.mktemp('videos'))
    ann = make_moving_shapes(root, {'train': 1}, size=32, frames=8)['train']
    return root, ann


def _video_dataset(ann_file, root, **kwargs):
    import projects.eva.video  # noqa: F401
    from mmaction.registry import DATASETS
    init_default_scope('mmaction')
    pipeline = [dict(type='CheckedDecordInit'),
                dict(type='UniformSample', clip_len=4, test_mode=True),
                dict(type='CheckedDecordDecode'), dict(type='FormatShape', input_format='NCTHW'),
                dict(type='PackActionInputs')]
    return DATASETS.build(dict(type='CheckedVideoDataset', ann_file=ann_file,
                               data_prefix=dict(video=root), pipeline=pipeline, **kwargs))


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



def test_video_label_out_of_range_names_list_line_and_value(videos, tmp_path):
    """A list with label 9 for 4 classes: testing counted it wrong silently, training failed
    with a bare 'IndexError: Target 9 is out of bounds'."""
    root, ann = videos
    with open(ann) as f:
        lines = f.read().splitlines()
    lines[2] = lines[2].rsplit(' ', 1)[0] + ' 9'
    bad = tmp_path / 'bad.txt'
    bad.write_text('\n'.join(lines) + '\n')
    assert len(_video_dataset(ann, root, num_classes=4)) == len(lines)  # the good list loads
    with pytest.raises(ValueError, match=rf'{bad}: 1 label\(s\) outside the 4 classes '
                                         r'\[0, 4\): line 3: label 9$'):
        _video_dataset(str(bad), root, num_classes=4)
    # configs give the class count to the head only: every loader's dataset gets it
    from projects.eva.engine.safety import add_safety
    from projects.eva.runner import runner_config
    cfg = add_safety(runner_config('configs/demo/eva-video_vit-tiny-p14_1xb16-8e_moving-shapes.py'),
                     'train')
    assert cfg.train_dataloader.dataset.dataset.num_classes == 4  # inside EpochSeededDataset
    assert cfg.val_dataloader.dataset.num_classes == cfg.test_dataloader.dataset.num_classes == 4


@pytest.mark.slow
def test_nan_stops_video_training(tmp_path, one_thread):
    """Video had no FiniteLossHook: lr=1e10 trained on through NaN and saved NaN weights."""
    from projects.eva.demo.synthetic_video import make_moving_shapes
    from reliability_tasks import assert_nan_run_stops_and_saves_nothing_non_finite
    root = str(tmp_path / 'videos')  # the demo's size and length, one video per class
    ann = make_moving_shapes(root, {'train': 1}, size=64, frames=16)['train']
    assert_nan_run_stops_and_saves_nothing_non_finite(
        'demo/eva-video_vit-tiny-p14_1xb16-8e_moving-shapes.py', tmp_path / 'w',
        {'train_dataloader.dataset.dataset.ann_file': ann,
         'train_dataloader.dataset.dataset.data_prefix.video': root,
         'train_dataloader.batch_size': 1, 'train_dataloader.num_workers': 0,
         'train_dataloader.persistent_workers': False, 'train_cfg.max_epochs': 1}, iters=4)
