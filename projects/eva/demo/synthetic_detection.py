"""A COCO-format instance-segmentation dataset drawn with PIL (the detection demo and tests).

Images hold 1-4 non-overlapping coloured shapes (circle / square / triangle = the 3 classes)
on textured backgrounds; every shape is annotated with its box, polygon mask and area, in
``annotations/instances_<split>.json`` next to ``<split>/*.png`` -- the layout of COCO, read by
mmdet's ``CocoDataset`` and scored by ``CocoMetric`` exactly as COCO would be.
"""
import json
import math
import os
import os.path as osp

import numpy as np
from PIL import ImageDraw

from .synthetic import COLOURS, SHAPES, _background, draw_shape, shape_polygon

CLASSES = SHAPES


def _polygon(shape: str, cx: float, cy: float, r: float) -> list:
    """Flat COCO polygon [x0, y0, x1, y1, ...] of a shape (circles with 24 vertices)."""
    if shape == 'circle':
        pts = [(cx + r * math.cos(2 * math.pi * i / 24), cy + r * math.sin(2 * math.pi * i / 24))
               for i in range(24)]
    else:
        pts = shape_polygon(shape, cx, cy, r)
    return [round(float(c), 2) for p in pts for c in p]


def _area(poly: list) -> float:
    x, y = np.array(poly[0::2]), np.array(poly[1::2])
    return float(0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def make_coco_instances(root: str, split: str, num: int, size: int = 128, seed: int = 0,
                        max_shapes: int = 4, radius: tuple = (0.09, 0.22)) -> str:
    """Write ``num`` images and their COCO json; returns the annotation path. Shapes have
    1..``max_shapes`` instances of radius ``radius`` (fractions of ``size``)."""
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, split), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images, anns = [], []
    colours = list(COLOURS.values())
    for i in range(num):
        img = _background(rng, size)
        draw = ImageDraw.Draw(img)
        placed = []
        for _ in range(rng.integers(1, max_shapes + 1)):
            for _attempt in range(20):
                r = rng.uniform(*radius) * size
                cx, cy = rng.uniform(r + 1, size - r - 1, 2)
                if all(math.hypot(cx - px, cy - py) > r + pr + 2 for px, py, pr in placed):
                    break
            else:
                continue
            placed.append((cx, cy, r))
            label = int(rng.integers(len(SHAPES)))
            draw_shape(draw, SHAPES[label], cx, cy, r, colours[rng.integers(len(colours))])
            poly = _polygon(SHAPES[label], cx, cy, r)
            xs, ys = poly[0::2], poly[1::2]
            x0, y0 = max(min(xs), 0.), max(min(ys), 0.)
            anns.append(dict(id=len(anns) + 1, image_id=i + 1, category_id=label + 1,
                             bbox=[x0, y0, min(max(xs), size) - x0, min(max(ys), size) - y0],
                             segmentation=[poly], area=_area(poly), iscrowd=0))
        name = f'{i:06d}.png'
        img.save(osp.join(root, split, name))
        images.append(dict(id=i + 1, file_name=name, width=size, height=size))
    ann_file = osp.join(root, 'annotations', f'instances_{split}.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=anns,
                       categories=[dict(id=k + 1, name=n) for k, n in enumerate(CLASSES)]), f)
    return ann_file
