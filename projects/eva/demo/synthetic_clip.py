"""Image-caption pairs the project generates for the EVA-CLIP demo and tests.

Each image holds one coloured shape (6 colours x 3 shapes = 18 concepts) of a random size and
position on a noisy gradient. Training pairs are written in open_clip's CSV layout
(``captions.tsv``: ``filepath<TAB>title``) with varied captions ("a small red circle at the top
left", "a photo of a blue square"...); held-out test images are written as an ImageNet-style
class-folder tree (``test/<colour>_<shape>/*.png``) for zero-shot classification.
"""
import csv
import os
import os.path as osp
from typing import List

import numpy as np
from PIL import ImageDraw

from .synthetic import COLOURS, SHAPES, _background, draw_shape

CAPTION_TEMPLATES = (
    'a {size} {colour} {shape} {where}',
    'a photo of a {colour} {shape}',
    'a {colour} {shape}',
    '{colour} {shape} {where}',
    'a {size} {colour} {shape}',
    'a picture of a {colour} {shape} {where}',
)


def clip_classnames() -> List[str]:
    """The 18 zero-shot class names in label order (sorted ``<colour>_<shape>`` folders)."""
    return [f.replace('_', ' ') for f in sorted(f'{c}_{s}' for c in COLOURS for s in SHAPES)]


def _draw(rng: np.random.Generator, size: int, colour: str, shape: str):
    img = _background(rng, size)
    big = rng.random() < 0.5
    r = rng.uniform(0.26, 0.34) * size if big else rng.uniform(0.15, 0.22) * size
    cx, cy = rng.uniform(r, size - r, 2)
    draw_shape(ImageDraw.Draw(img), shape, cx, cy, r, COLOURS[colour])
    where = ('at the top' if cy < size / 2 else 'at the bottom') + \
        (' left' if cx < size / 2 else ' right')
    return img, ('large' if big else 'small'), where


def make_caption_dataset(root: str, num_train: int = 2400, num_test_per_class: int = 20,
                         size: int = 64, seed: int = 0) -> List[str]:
    """Write ``root/train/{images/,captions.tsv}`` and ``root/test/<class>/``; returns the
    class names. Concepts are balanced; captions are drawn from :data:`CAPTION_TEMPLATES`."""
    rng = np.random.default_rng(seed)
    concepts = [(c, s) for c in COLOURS for s in SHAPES]
    img_dir = osp.join(root, 'train', 'images')
    os.makedirs(img_dir, exist_ok=True)
    rows = []
    for i in range(num_train):
        colour, shape = concepts[i % len(concepts)]
        img, size_word, where = _draw(rng, size, colour, shape)
        name = f'{i:06d}.png'
        img.save(osp.join(img_dir, name))
        template = CAPTION_TEMPLATES[rng.integers(len(CAPTION_TEMPLATES))]
        rows.append((osp.join('images', name), template.format(
            size=size_word, colour=colour, shape=shape, where=where)))
    with open(osp.join(root, 'train', 'captions.tsv'), 'w', newline='') as f:
        writer = csv.writer(f, delimiter='\t')
        writer.writerow(('filepath', 'title'))
        writer.writerows(rows)
    for colour, shape in concepts:
        folder = osp.join(root, 'test', f'{colour}_{shape}')
        os.makedirs(folder, exist_ok=True)
        for j in range(num_test_per_class):
            _draw(rng, size, colour, shape)[0].save(osp.join(folder, f'{j:04d}.png'))
    return clip_classnames()
