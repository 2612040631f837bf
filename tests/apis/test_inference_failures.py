"""One bad file does not stop a folder: every input is processed, each failure names its file
and cause, a summary counts done / failed, the CLI exits 1 when any failed (``--fail-fast``:
the old stop-at-first behaviour); the Python API returns a record per input, failures
included. Real photos: scikit-learn's china.jpg and flower.jpg."""
import importlib
import json
import os.path as osp
import shutil
import sys

import numpy as np
import pytest

from projects.eva.apis import build_inferencer, run_inference

api = importlib.import_module('projects.eva.apis.inference')  # the module, not the function

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))
CLS = osp.join(ROOT, 'configs', 'demo', 'eva-cls_vit-tiny-p14_1xb64-80e_digits.py')
VID = osp.join(ROOT, 'configs', 'demo', 'eva-video_vit-tiny-p14_1xb16-8e_moving-shapes.py')


@pytest.fixture
def folder(tmp_path):
    """a_good, b_truncated (a third of a JPEG), c_text (text named .jpg), d_empty (0 bytes),
    e_good."""
    from sklearn.datasets import images
    src = osp.dirname(images.__file__)
    d = tmp_path / 'photos'
    d.mkdir()
    shutil.copy(osp.join(src, 'china.jpg'), d / 'a_good.jpg')
    data = open(osp.join(src, 'flower.jpg'), 'rb').read()
    (d / 'b_truncated.jpg').write_bytes(data[:len(data) // 3])
    (d / 'c_text.jpg').write_text('not an image\n')
    (d / 'd_empty.jpg').write_bytes(b'')
    shutil.copy(osp.join(src, 'flower.jpg'), d / 'e_good.jpg')
    return d


@pytest.fixture(scope='module')
def inferencer():
    return build_inferencer(CLS, None, device='cpu')


def test_every_input_gets_a_record(inferencer, folder, tmp_path, one_thread):
    out = tmp_path / 'out'
    recs = run_inference(inferencer, str(folder), out_dir=str(out), batch_size=2,
                         progress=False)
    assert [osp.basename(r['input']) for r in recs] == [
        'a_good.jpg', 'b_truncated.jpg', 'c_text.jpg', 'd_empty.jpg', 'e_good.jpg']
    errors = {osp.basename(r['input']): r.get('error') for r in recs}
    assert errors['a_good.jpg'] is None and errors['e_good.jpg'] is None
    assert errors['b_truncated.jpg'] == \
        f'{folder}/b_truncated.jpg: cannot decode the image (not an image, or truncated)'
    assert errors['c_text.jpg'] == \
        f'{folder}/c_text.jpg: cannot decode the image (not an image, or truncated)'
    assert errors['d_empty.jpg'] == f'{folder}/d_empty.jpg: empty file (0 bytes)'
    assert sorted(p.name for p in (out / 'preds').iterdir()) == ['a_good.json', 'e_good.json']
    assert sorted(p.name for p in (out / 'vis').iterdir()) == ['a_good.png', 'e_good.png']
    result = json.loads((out / 'summary.json').read_text())
    assert result['done'] == 2
    assert [osp.basename(f['input']) for f in result['failed']] == [
        'b_truncated.jpg', 'c_text.jpg', 'd_empty.jpg']


def test_fail_fast_stops_at_the_first(inferencer, folder, one_thread):
    with pytest.raises(RuntimeError, match='b_truncated.jpg: cannot decode the image'):
        run_inference(inferencer, str(folder), progress=False, fail_fast=True)


def test_a_failing_prediction_does_not_take_its_batch(inferencer, folder, monkeypatch,
                                                      one_thread):
    """The model raising on one input of a batch: the batch is retried one by one."""
    predict = api._predict

    def flaky(inf, task, batch):
        if any('e_good' in p for p in batch):
            raise RuntimeError('out of memory (simulated)')
        return predict(inf, task, batch)

    monkeypatch.setattr(api, '_predict', flaky)
    good = [str(folder / 'a_good.jpg'), str(folder / 'e_good.jpg')]
    recs = run_inference(inferencer, good, batch_size=2, progress=False)
    assert 'error' not in recs[0] and recs[0]['pred_label'] >= 0
    assert recs[1]['error'] == f'{good[1]}: RuntimeError: out of memory (simulated)'


def test_cli_lists_failures_and_exits_1(folder, tmp_path, capsys, one_thread):
    import inference as cli
    out = str(tmp_path / 'cli')
    with pytest.raises(SystemExit) as e:
        cli.main([CLS, 'none', str(folder), '--out-dir', out, '--threads', '1'])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert '3 of 5 inputs failed' in err
    assert f'  {folder}/d_empty.jpg: empty file (0 bytes)' in err
    with pytest.raises(SystemExit, match='error: .*b_truncated.jpg: cannot decode'):
        cli.main([CLS, 'none', str(folder), '--out-dir', out, '--fail-fast'])
    recs = cli.main([CLS, 'none', str(folder / 'a_good.jpg'), '--out-dir', out])
    assert len(recs) == 1 and 'error' not in recs[0]


def test_corrupt_and_empty_videos_are_named(tmp_path, one_thread):
    from projects.eva.demo.synthetic_video import make_moving_shapes
    make_moving_shapes(str(tmp_path / 'v'), {'val': 1}, size=64, frames=16)
    videos = tmp_path / 'v' / 'videos' / 'val'
    (videos / 'broken.mp4').write_text('not a video\n')
    (videos / 'empty.mp4').write_bytes(b'')
    inferencer = build_inferencer(VID, None, device='cpu')
    recs = run_inference(inferencer, str(videos), progress=False)
    errors = {osp.basename(r['input']): r.get('error') for r in recs}
    assert len(recs) == 6 and sum(e is None for e in errors.values()) == 4
    assert errors['broken.mp4'].startswith(f'{videos}/broken.mp4: cannot decode the video')
    assert errors['empty.mp4'] == f'{videos}/empty.mp4: empty file (0 bytes)'


def test_class_count_must_match_the_head(one_thread):
    """``--classes a,b`` on the demo's 10-class classifier: both numbers named (was an
    IndexError inside mmpretrain's visualizer)."""
    import inference as cli
    with pytest.raises(ValueError, match=r'2 class names given .* but the model predicts 10 '
                       r'classes \(model.head.num_classes = 10\)'):
        cli.main([CLS, 'none', 'unused.jpg', '--classes', 'a,b'])
    det = osp.join(ROOT, 'configs', 'demo', 'eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py')
    with pytest.raises(ValueError, match=r'model.roi_head.bbox_head\[-1\].num_classes = 3'):
        build_inferencer(det, None, device='cpu', classes=['a'])


def test_small_picture_and_no_weights_are_marked(tmp_path, one_thread):
    """A 32 px photo is drawn at 224 px (the labels scale with the picture); a run without
    weights warns, says so in every record and draws a red "NO TRAINED WEIGHTS" band under every
    picture (every frame of a video), from the tool and from the Python API alike."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    from projects.eva.apis.inference import inference, mark_no_weights
    small = tmp_path / 'small.png'
    Image.fromarray(load_sample_image('china.jpg')[100:132, 200:232]).save(small)
    import inference as cli
    out = tmp_path / 'out'
    with pytest.warns(UserWarning, match='checkpoint none: no trained weights'):
        rec = cli.main([CLS, 'none', str(small), '--out-dir', str(out)])[0]
    picture = np.asarray(Image.open(out / 'vis' / rec['visualization']).convert('RGB'))
    assert picture.shape == (224, 224, 3)
    assert 'no trained weights' in rec['warning']
    assert 'no trained weights' in json.loads((out / 'preds' / 'small.json').read_text())[
        'warning']
    band = picture[-12:]  # red, with white text
    assert (band == (200, 0, 0)).all(-1).mean() > 0.5 and (band > 240).all(-1).any()
    with pytest.warns(UserWarning, match='checkpoint none'):
        api = inference(CLS, None, [str(small)], out_dir=str(tmp_path / 'api'), device='cpu',
                        progress=False)[0]
    assert api['checkpoint'] is None and api['warning'] == rec['warning']
    clip = np.zeros((3, 40, 60, 3), np.uint8)
    assert (mark_no_weights(clip)[:, -1, 0] == (200, 0, 0)).all()


@pytest.mark.parametrize('config', [
    'eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py',
    'eva-mask2former_vit-tiny-adapter-p16_1xb8-160it_shapes-seg-128.py'])
def test_small_picture_is_drawn_at_a_readable_size_for_dense_tasks(tmp_path, one_thread,
                                                                     config):
    """Detection and segmentation pictures of a 40 x 32 px photo are drawn at 280 x 224 (boxes
    scaled, masks / label maps resized with them); the JSON keeps the input's size."""
    from PIL import Image
    from sklearn.datasets import load_sample_image
    small = tmp_path / 'small.png'
    Image.fromarray(load_sample_image('china.jpg')[100:132, 200:240]).save(small)
    import inference as cli
    out = tmp_path / 'out'
    rec = cli.main([osp.join(ROOT, 'configs', 'demo', config), 'none', str(small),
                    '--out-dir', str(out)])[0]
    assert 'error' not in rec, rec
    assert Image.open(out / 'vis' / rec['visualization']).size == (280, 224)
    if 'mask2former' in config:  # the saved label map is the input's, not the picture's
        assert [Image.open(p).size for p in (out / 'preds').glob('*.png')] == [(40, 32)]
