"""Datasets and transforms EVA-CLIP needs beyond mmpretrain / mmaction2.

- ``CsvImageTextDataset``: image-caption pairs in open_clip's CSV/TSV layout
  (``filepath<TAB>title``), the format open_clip's ``--dataset-type csv`` trains on.
- ``ImageNetV2``: its folders are named ``0`` ... ``999`` (the class index), which a sorted
  folder scan would order ``0, 1, 10, 100, ...``.
- ``ObjectNet``: the 113 classes shared with ImageNet-1K (``objectnet-1.0/{images,mappings}``).
- ``VideoCentreFrame``: turns an mmaction2-decoded single frame into an mmpretrain image, for
  zero-shot video classification on the centre frame.

ImageNet-1K (``ImageNet``), -A / -R / -Sketch (wnid folders: ``CustomDataset``), CIFAR
(``CIFAR10``/``CIFAR100``) and videos (``mmaction.VideoDataset``) reuse the existing classes.
"""
import csv
import os
import os.path as osp
from typing import List

import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS, TRANSFORMS

from .zero_shot import objectnet_classes

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def _check_dir(path: str, what: str):
    if not osp.isdir(path):
        raise FileNotFoundError(f'{what} folder not found: {path}')


@DATASETS.register_module()
class CsvImageTextDataset(BaseDataset):
    """Image-caption pairs from a CSV/TSV file (open_clip ``--dataset-type csv``).

    Args:
        ann_file: the table (header row with ``img_key`` and ``caption_key`` columns).
        data_prefix: folder that relative image paths are joined to.
        sep: column separator (open_clip's default is a tab).
    """

    def __init__(self, ann_file: str, img_key: str = 'filepath', caption_key: str = 'title',
                 sep: str = '\t', **kwargs):
        self.img_key, self.caption_key, self.sep = img_key, caption_key, sep
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'caption table not found: {self.ann_file}')
        with open(self.ann_file, newline='', encoding='utf-8') as f:
            reader = csv.DictReader(f, delimiter=self.sep)
            if reader.fieldnames is None:
                raise ValueError(f'caption table is empty: {self.ann_file}')
            missing = {self.img_key, self.caption_key} - set(reader.fieldnames or ())
            if missing:
                raise KeyError(f'{self.ann_file}: no column(s) {sorted(missing)}; header is '
                               f'{reader.fieldnames} (separator {self.sep!r})')
            rows = [(reader.line_num, r) for r in reader]  # line_num: blank lines skipped
        if not rows:
            raise ValueError(f'caption table has a header but no rows: {self.ann_file}')
        for line, r in rows:  # a short row leaves its columns None; 'path<TAB>' gives ''
            if not (r[self.img_key] or '').strip() or not (r[self.caption_key] or '').strip():
                raise ValueError(
                    f'{self.ann_file}, line {line}: no image path or no caption (empty or '
                    f'blank; columns {self.img_key!r}, {self.caption_key!r}: '
                    f'{r[self.img_key]!r}, {r[self.caption_key]!r})')
        rows = [r for _, r in rows]
        prefix = self.data_prefix.get('img_path', '')
        return [dict(img_path=osp.join(prefix, r[self.img_key]), text=r[self.caption_key])
                for r in rows]


@DATASETS.register_module()
class ImageNetV2(BaseDataset):
    """ImageNet-V2 (``imagenetv2-matched-frequency-format-val/<class index>/<img>.jpeg``)."""

    def __init__(self, data_root: str, data_prefix: str = '', **kwargs):
        super().__init__(ann_file='', data_root=data_root, data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        root = self.data_prefix['img_path']
        _check_dir(root, 'ImageNet-V2')
        folders = [d for d in os.listdir(root) if osp.isdir(osp.join(root, d))]
        bad = [d for d in folders if not d.isdigit() or int(d) >= 1000]
        if bad or not folders:
            raise ValueError(f'{root}: ImageNet-V2 folders must be the class indices 0..999, '
                             f'found {sorted(bad)[:5] or "none"}')
        data = []
        for d in sorted(folders, key=int):
            for name in sorted(os.listdir(osp.join(root, d))):
                if name.lower().endswith(IMG_EXTENSIONS):
                    data.append(dict(img_path=osp.join(root, d, name), gt_label=int(d)))
        return data


@DATASETS.register_module()
class ObjectNet(BaseDataset):
    """ObjectNet restricted to its 113 ImageNet-overlapping classes, labelled by sorted folder
    (CLIP_benchmark's protocol; the class names come from the same mapping files, see
    :func:`.zero_shot.objectnet_classes`). ``data_root``: the ``objectnet-1.0`` folder."""

    def __init__(self, data_root: str, **kwargs):
        super().__init__(ann_file='', data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        classes = objectnet_classes(self.data_root)
        images = osp.join(self.data_root, 'images')
        _check_dir(images, 'ObjectNet images')
        self._metainfo['classes'] = tuple(classes.values())
        data = []
        for label, folder in enumerate(classes):
            path = osp.join(images, folder)
            _check_dir(path, f'ObjectNet class {folder!r}')
            for name in sorted(os.listdir(path)):
                if name.lower().endswith(IMG_EXTENSIONS):
                    data.append(dict(img_path=osp.join(path, name), gt_label=label))
        return data


@TRANSFORMS.register_module()
class VideoCentreFrame(BaseTransform):
    """mmaction2 ``DecordDecode`` output (``imgs``: one RGB frame) -> ``img`` (BGR, like
    ``LoadImageFromFile``) and ``label`` -> ``gt_label``, so mmpretrain transforms follow.
    Sample the frame with ``SampleFrames(clip_len=1, num_clips=1, test_mode=True)``: its
    offset is ``num_frames // 2``, the centre frame."""

    def transform(self, results: dict) -> dict:
        imgs = results.get('imgs')
        if imgs is None or len(imgs) != 1:
            raise ValueError(f'VideoCentreFrame expects exactly one decoded frame, got '
                             f'{None if imgs is None else len(imgs)}: use SampleFrames('
                             'clip_len=1, num_clips=1, test_mode=True) before DecordDecode')
        img = np.ascontiguousarray(np.asarray(imgs[0])[..., ::-1])
        results['img'] = img
        results['img_shape'] = results['ori_shape'] = img.shape[:2]
        if 'label' in results and 'gt_label' not in results:
            results['gt_label'] = results['label']
        results.pop('imgs')
        return results
