"""Short videos the project generates: a shape moving left / right / up / down.

No single frame tells the classes apart (the shape crosses the whole frame, so each position
on its line occurs under two opposite directions); only the order of the frames does. Written as ``.mp4`` files
(OpenCV, ``mp4v``) with mmaction2 ``VideoDataset`` annotation lists, so the real loaders
(decord) read them as they read Kinetics.
"""
import os.path as osp
from typing import Dict

import numpy as np
from PIL import Image, ImageDraw

from ..apis.video_vis import write_mp4
from .synthetic import COLOURS, SHAPES, draw_shape

DIRECTIONS = ('left', 'right', 'up', 'down')
_STEP = {'left': (-1, 0), 'right': (1, 0), 'up': (0, -1), 'down': (0, 1)}


def moving_shape_frames(rng: np.random.Generator, direction: str, size: int = 64,
                        frames: int = 16) -> np.ndarray:
    """(frames, size, size, 3) uint8 RGB: a large shape crossing a plain noisy background
    from one edge to the other along ``direction``.

    The path spans the frame, so over a clip the shape visits every position on its line
    under either of two opposite directions: one frame (without its time) cannot tell
    left from right or up from down; the order of the frames can.
    """
    if direction not in _STEP:
        raise KeyError(f'unknown direction {direction!r}; choose from {DIRECTIONS}')
    level = rng.integers(20, 100)
    bg = np.clip(level + rng.normal(0, 4, (size, size, 3)), 0, 255).astype(np.uint8)
    bg = Image.fromarray(bg)
    colours = list(COLOURS.values())
    shape, colour = SHAPES[rng.integers(len(SHAPES))], colours[rng.integers(len(colours))]
    r = rng.uniform(0.18, 0.24) * size
    travel = size - 2 * r
    dx, dy = _STEP[direction]
    across = rng.uniform(r, size - r)
    out = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        s = r + travel * t / max(frames - 1, 1)
        pos = s if (dx + dy) > 0 else size - s
        cx, cy = (pos, across) if dx else (across, pos)
        img = bg.copy()
        draw_shape(ImageDraw.Draw(img), shape, cx, cy, r, colour)
        out[t] = np.asarray(img)
    return out


def make_moving_shapes(root: str, per_class: Dict[str, int], size: int = 64,
                       frames: int = 16, seed: int = 0) -> Dict[str, str]:
    """Write ``root/videos/<split>/<direction>_<i>.mp4`` and ``root/<split>_list_videos.txt``
    (``videos/<split>/<name>.mp4 <label>``); ``per_class`` maps split -> videos per class.
    Returns split -> annotation file."""
    anns = {}
    for s_idx, (split, n) in enumerate(sorted(per_class.items())):
        rng = np.random.default_rng([seed, s_idx])
        lines = []
        for i in range(n):
            for label, direction in enumerate(DIRECTIONS):
                rel = f'videos/{split}/{direction}_{i:04d}.mp4'
                write_mp4(osp.join(root, rel), moving_shape_frames(rng, direction, size, frames),
                          fps=8)
                lines.append(f'{rel} {label}\n')
        anns[split] = osp.join(root, f'{split}_list_videos.txt')
        with open(anns[split], 'w') as f:
            f.writelines(lines)
    return anns
