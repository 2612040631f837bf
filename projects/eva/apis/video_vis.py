"""Video pictures: mmaction2's ActionVisualizer frames with the top-k labels, saved as an
animated GIF or an ``.mp4`` (what mmaction2's demo writes).

Two things of mmaction2 1.2 are worked around here, not patched: its visualizer draws the
labels of a ``pred_labels`` field (``item`` = class ids, ``score`` = all scores) while its
recognizers return ``pred_label`` / ``pred_score``, so nothing was drawn; and its frames are
BGR (``decord`` frames reversed, as its video backend expects), so a picture saved as RGB had
red and blue swapped.
"""
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np

VIDEO_FORMATS = ('gif', 'mp4')
MIN_SHORT_EDGE = 224  # frames are drawn at least this large


def draw_video(visualizer, path: str, ds, k: int,
               classes: Optional[Sequence[str]] = None) -> np.ndarray:
    """``(T, H, W, 3)`` RGB frames of ``path`` with the ``k`` best classes of ``ds`` (an
    mmaction2 ``ActionDataSample`` with ``pred_score``) and their scores drawn."""
    import torch
    from mmengine.structures import LabelData
    scores = ds.pred_score.detach().float().cpu()
    top = torch.argsort(scores, descending=True, stable=True)[:k]
    vis_ds = ds.clone()
    vis_ds.set_field(LabelData(item=top, score=scores), 'pred_labels')
    if classes is not None:
        visualizer.dataset_meta = dict(visualizer.dataset_meta or {}, classes=list(classes))
    import decord
    h, w = decord.VideoReader(path)[0].shape[:2]
    small = min(h, w) < MIN_SHORT_EDGE  # its text scales with the frame: unreadable below
    frames = visualizer.add_datasample(osp.basename(path), path, vis_ds, draw_gt=False,
                                       draw_pred=True, draw_score=True, out_type='img',
                                       rescale_factor=MIN_SHORT_EDGE / min(h, w)
                                       if small else None)
    return np.ascontiguousarray(np.stack([np.asarray(f) for f in frames])[..., ::-1])


def save_video(frames: np.ndarray, path_no_ext: str, fmt: str = 'gif', fps: int = 4) -> str:
    """Write RGB ``frames`` as ``path_no_ext.gif`` (PIL) or ``.mp4`` (OpenCV, mp4v)."""
    if fmt not in VIDEO_FORMATS:
        raise ValueError(f'video format must be one of {VIDEO_FORMATS}, got {fmt!r}')
    out = f'{path_no_ext}.{fmt}'
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    frames = frames.astype(np.uint8)
    if fmt == 'gif':
        from PIL import Image
        images = [Image.fromarray(f) for f in frames]
        images[0].save(out, save_all=True, append_images=images[1:],
                       duration=int(1000 / fps), loop=0)
        return out
    return write_mp4(out, frames, fps)


def write_mp4(path: str, frames: np.ndarray, fps: int) -> str:
    """Write RGB uint8 ``frames`` ``(T, H, W, 3)`` as an ``.mp4`` (OpenCV, mp4v: what
    mmaction2's demo writes and decord reads), cropped to even sizes (mp4v needs them)."""
    import cv2
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    frames = frames[:, :frames.shape[1] // 2 * 2, :frames.shape[2] // 2 * 2]
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot write {path} (no mp4v encoder in this build)')
    try:
        for f in frames:
            writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path
