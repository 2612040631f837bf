"""Small datasets the project generates itself, in the real on-disk layouts.

No downloads are possible here, so the demo and the tests train on images drawn with PIL
(coloured shapes on textured backgrounds), written as ordinary image folders that the real
loaders (mmpretrain ``CustomDataset``...) read exactly as they read ImageNet or COCO.
"""
import math
import os
import os.path as osp
from typing import Tuple

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ('circle', 'square', 'triangle')
COLOURS = {
    'red': (220, 40, 40), 'green': (40, 180, 60), 'blue': (40, 80, 220),
    'yellow': (230, 210, 40), 'purple': (150, 60, 190), 'white': (240, 240, 240),
}


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """A smooth two-colour gradient with mild noise, so patches are not trivially flat."""
    c0, c1 = rng.integers(0, 120, 3), rng.integers(0, 120, 3)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    t = (np.cos(angle) * xx + np.sin(angle) * yy)
    t = (t - t.min()) / max(np.ptp(t), 1e-6)
    img = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    img += rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def shape_polygon(shape: str, cx: float, cy: float, r: float):
    """Outline of a shape as a PIL drawing call argument (bbox for circles, points else)."""
    if shape == 'circle':
        return [cx - r, cy - r, cx + r, cy + r]
    if shape == 'square':
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == 'triangle':
        return [(cx, cy - r), (cx + r * 0.95, cy + r * 0.8), (cx - r * 0.95, cy + r * 0.8)]
    raise KeyError(shape)


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float,
               fill: Tuple[int, int, int]):
    geom = shape_polygon(shape, cx, cy, r)
    if shape == 'circle':
        draw.ellipse(geom, fill=fill)
    else:
        draw.polygon(geom, fill=fill)


def random_shapes_image(rng: np.random.Generator, size: int, max_shapes: int = 3) -> Image.Image:
    img = _background(rng, size)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(1, max_shapes + 1)):
        r = rng.uniform(0.1, 0.25) * size
        cx, cy = rng.uniform(r, size - r, 2)
        colour = list(COLOURS.values())[rng.integers(len(COLOURS))]
        draw_shape(draw, SHAPES[rng.integers(len(SHAPES))], cx, cy, r, colour)
    return img


def make_unlabeled_images(root: str, num: int, size: int = 112, seed: int = 0) -> str:
    """Unlabelled images for MIM, in nested folders like an ImageNet-21K/CC layout."""
    rng = np.random.default_rng(seed)
    for i in range(num):
        folder = osp.join(root, f'{i // 100:05d}')
        os.makedirs(folder, exist_ok=True)
        random_shapes_image(rng, size).save(osp.join(folder, f'{i:08d}.png'))
    return root


def digits_split(val_fraction: float = 0.25, seed: int = 0):
    """scikit-learn's handwritten digits (1797 real 8x8 scans, shipped inside the package),
    split once: returns ``(x_train, y_train, x_val, y_val)`` with pixel values 0..16."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(digits.target))
    n_val = int(round(len(order) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    return digits.images[train], digits.target[train], digits.images[val], digits.target[val]


def make_digits_folders(root: str, size: int = 112, val_fraction: float = 0.25,
                        seed: int = 0) -> str:
    """Write the digits split as ImageNet-style class folders ``{train,val}/<digit>/*.png``,
    upsampled bicubically from 8x8 to ``size``."""
    x_tr, y_tr, x_va, y_va = digits_split(val_fraction, seed)
    for split, xs, ys in (('train', x_tr, y_tr), ('val', x_va, y_va)):
        for i, (x, y) in enumerate(zip(xs, ys)):
            folder = osp.join(root, split, str(int(y)))
            os.makedirs(folder, exist_ok=True)
            img = Image.fromarray((x * (255 / 16)).astype(np.uint8)).resize(
                (size, size), Image.BICUBIC).convert('RGB')
            img.save(osp.join(folder, f'{i:05d}.png'))
    return root
