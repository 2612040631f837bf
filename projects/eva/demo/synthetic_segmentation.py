"""A semantic-segmentation dataset the project draws itself, in ADE20K's on-disk layout.

Classes are shapes (background, circle, square, triangle) in random colours on textured
backgrounds, so a model must learn shape, not colour. Files follow ADE20K:
``images/{training,validation}/*.jpg`` and ``annotations/{training,validation}/*.png`` with
one class id per pixel; mmseg's ``BaseSegDataset`` reads them as it reads ADE20K.
"""
import os
import os.path as osp

import numpy as np
from PIL import Image, ImageDraw

from .synthetic import COLOURS, SHAPES, _background, draw_shape

SEG_CLASSES = ('background', ) + SHAPES
SEG_PALETTE = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200]]
SPLITS = {'train': 'training', 'val': 'validation'}


def random_segmentation_sample(rng: np.random.Generator, size: int, max_shapes: int = 3):
    """(RGB image, uint8 label map): later shapes occlude earlier ones in both."""
    img = _background(rng, size)
    label = Image.new('L', (size, size), 0)
    draw_img, draw_label = ImageDraw.Draw(img), ImageDraw.Draw(label)
    colours = list(COLOURS.values())
    for _ in range(rng.integers(1, max_shapes + 1)):
        r = rng.uniform(0.12, 0.28) * size
        cx, cy = rng.uniform(r, size - r, 2)
        cls = int(rng.integers(len(SHAPES)))
        draw_shape(draw_img, SHAPES[cls], cx, cy, r, colours[rng.integers(len(colours))])
        draw_shape(draw_label, SHAPES[cls], cx, cy, r, cls + 1)
    return img, np.asarray(label, dtype=np.uint8)


def make_segmentation_shapes(root: str, num_train: int = 256, num_val: int = 64,
                             size: int = 128, seed: int = 0) -> str:
    """Write the train and val splits under ``root`` (ADE20K layout); returns ``root``."""
    if size <= 0 or num_train < 0 or num_val < 0:
        raise ValueError(f'bad dataset size: size={size}, num_train={num_train}, '
                         f'num_val={num_val}')
    rng = np.random.default_rng(seed)
    for split, num in (('train', num_train), ('val', num_val)):
        img_dir = osp.join(root, 'images', SPLITS[split])
        ann_dir = osp.join(root, 'annotations', SPLITS[split])
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for i in range(num):
            img, label = random_segmentation_sample(rng, size)
            name = f'shapes_{split}_{i:06d}'
            img.save(osp.join(img_dir, name + '.jpg'), quality=95)
            Image.fromarray(label).save(osp.join(ann_dir, name + '.png'))
    return root
