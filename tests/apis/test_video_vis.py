"""Video pictures: right colours, the top-k labels drawn, GIF or .mp4 (as mmaction2's demo).

A red video must come out red (mmaction2's frames are BGR: saved as RGB they turned blue), and
drawing the top-3 labels must draw more than the top-1 (mmaction2 1.2's visualizer reads a
``pred_labels`` field its recognizers never fill, so no label was drawn at all).
"""
import os.path as osp

import numpy as np
import pytest

from projects.eva.apis import build_inferencer, run_inference

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VID = osp.join(ROOT, 'configs', 'demo', 'eva-video_vit-tiny-p14_1xb16-8e_moving-shapes.py')
RED = (230, 20, 30)


@pytest.fixture(scope='module')
def red_video(tmp_path_factory):
    from projects.eva.apis.video_vis import write_mp4
    folder = tmp_path_factory.mktemp('red')
    frames = np.zeros((8, 96, 128, 3), np.uint8)
    frames[...] = RED
    frames[:, 60:80, 90:110] = (255, 255, 255)  # a white square: the frames are not uniform
    path = str(folder / 'red.mp4')
    write_mp4(path, frames, fps=8)
    return path


@pytest.fixture(scope='module')
def inferencer():
    return build_inferencer(VID, None, device='cpu')


def _gif_frames(path):
    from PIL import Image, ImageSequence
    return [np.asarray(f.convert('RGB')) for f in ImageSequence.Iterator(Image.open(path))]


def _run(inferencer, video, out, **kwargs):
    rec = run_inference(inferencer, video, out_dir=str(out), progress=False, **kwargs)[0]
    return osp.join(str(out), 'vis', rec['visualization'])


def test_gif_keeps_the_colours(inferencer, red_video, tmp_path, one_thread):
    frames = _gif_frames(_run(inferencer, red_video, tmp_path, topk=2))
    assert len(frames) == 8
    corner = frames[3][-10:, :10].reshape(-1, 3).mean(0)  # below the text box
    assert corner[0] > 180 and corner[2] < 80, f'red came out as {corner}'


def test_top_k_labels_are_drawn(inferencer, red_video, tmp_path, one_thread):
    one = _gif_frames(_run(inferencer, red_video, tmp_path / 'k1', topk=1))[0]
    three = _gif_frames(_run(inferencer, red_video, tmp_path / 'k3', topk=3))[0]
    changed = (np.abs(one.astype(int) - three.astype(int)).sum(-1) > 60).sum()
    assert changed > 100, 'the second and third labels were not drawn'
    # the class names of the config's dataset are what is written (not bare ids): the
    # pictures of two label sets differ where the names are
    from projects.eva.apis.video_vis import draw_video
    from mmaction.structures import ActionDataSample
    import torch
    ds = ActionDataSample()
    ds.set_pred_score(torch.tensor([0.1, 0.6, 0.2, 0.1]))
    a = draw_video(inferencer.visualizer, red_video, ds, 1, ['left', 'right', 'up', 'down'])
    b = draw_video(inferencer.visualizer, red_video, ds, 1, ['l', 'a much longer name', 'u',
                                                            'd'])
    # a 96 x 128 video is drawn at 224 x 299: its labels scale with the frame
    assert a.shape == (8, 224, 299, 3) and (a != b).any()


def test_mp4_output(inferencer, red_video, tmp_path, one_thread):
    path = _run(inferencer, red_video, tmp_path, topk=2, video_format='mp4')
    assert path.endswith('.mp4')
    import decord
    frames = decord.VideoReader(path).get_batch(list(range(8))).asnumpy()  # RGB
    assert frames.shape == (8, 224, 298, 3)  # drawn at 224 x 299, cut to even for mp4v
    corner = frames[3][-10:, :10].reshape(-1, 3).mean(0)
    assert corner[0] > 180 and corner[2] < 80, f'red came out as {corner}'
    with pytest.raises(ValueError, match="one of \\('gif', 'mp4'\\)"):
        _run(inferencer, red_video, tmp_path / 'x', video_format='avi')
