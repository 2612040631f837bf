"""CLIP faults: missing images, empty or malformed caption tables."""
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image

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
    # 'path<TAB>' with nothing after it was accepted and trained on the caption ''
    with pytest.raises(ValueError, match=f"{table}, line 3: no image path or no caption "
                                         r"\(empty or blank.*'images/a.png', ''\)"):
        build('filepath\ttitle\nimages/a.png\tok\nimages/a.png\t\n')
    with pytest.raises(ValueError, match=f'{table}, line 4: no image path or no caption'):
        build('filepath\ttitle\nimages/a.png\tok\n\nimages/a.png\t  \n')  # blank line 3




@pytest.mark.slow
def test_nan_stops_clip_training(tmp_path, one_thread):
    """CLIP had no FiniteLossHook: lr=1e10 trained on through NaN and saved NaN weights."""
    from projects.eva.demo.synthetic_clip import make_caption_dataset
    from reliability_tasks import assert_nan_run_stops_and_saves_nothing_non_finite
    root = str(tmp_path / 'data')
    make_caption_dataset(root, num_train=16, num_test_per_class=1, size=40, seed=0)
    assert_nan_run_stops_and_saves_nothing_non_finite(
        'demo/eva-clip_vit-tiny-p8_1xb64-6e_shapes-captions.py', tmp_path / 'w',
        {'train_dataloader.dataset.data_root': root, 'train_dataloader.batch_size': 4,
         'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
         'train_cfg.max_epochs': 1}, iters=4)
