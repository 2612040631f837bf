"""COCO / LVIS / Objects365 datasets that refuse bad annotations instead of dropping them.

mmdet's ``CocoDataset`` silently ignores annotations whose ``image_id`` is not an image of the
file, and silently skips degenerate boxes (w or h < 1, area <= 0, outside the image) and
unknown categories. A broken conversion can so lose most of its boxes without a word. These
subclasses check every annotation: ``on_bad_annotation='error'`` (default) stops with the
annotation file, the annotation id and the problem; ``'skip'`` drops them as mmdet does but
counts and logs them (with their ids), e.g. for COCO train2017, which holds two zero-height
boxes (ids 918 and 2206849). ``iscrowd`` / ``ignore`` annotations are not errors, and
categories that exist in the file but are left out by ``metainfo.classes`` are a choice, not
an error.
"""
import math
from collections import Counter
from typing import List, Tuple

from mmdet.datasets import CocoDataset, LVISV1Dataset, Objects365V2Dataset
from mmdet.registry import DATASETS
from mmengine.logging import MMLogger

_SHOWN = 10  # annotation ids listed per message


class CheckedAnnotationsMixin:
    """Validation shared by the checked datasets (see the module docstring)."""

    def __init__(self, *args, on_bad_annotation: str = 'error', **kwargs):
        if on_bad_annotation not in ('error', 'skip'):
            raise ValueError(f"on_bad_annotation must be 'error' or 'skip', got "
                             f'{on_bad_annotation!r}')
        self.on_bad_annotation = on_bad_annotation
        self.bad_annotations: List[tuple] = []  # (annotation id, kind, problem)
        super().__init__(*args, **kwargs)

    def _api(self):
        api = getattr(self, 'coco', None) or getattr(self, 'lvis', None)
        if api is None:  # pragma: no cover - mmdet renamed its attributes
            raise RuntimeError(f'{type(self).__name__}: no COCO/LVIS api during loading')
        return api

    def _check_image_ids(self, api):
        """Annotations of unknown images never reach ``parse_data_info``: find them here."""
        images = set(api.imgs)
        for ann in api.dataset.get('annotations', []):
            if ann.get('image_id') not in images:
                self.bad_annotations.append((ann.get('id'), 'unknown image', (
                    f"unknown image_id {ann.get('image_id')!r} (not in 'images')")))

    @staticmethod
    def annotation_problem(ann: dict, img: dict, categories) -> Tuple[str, str]:
        """(kind, message) of why mmdet would silently drop ``ann``; ('', '') if fine."""
        box = ann.get('bbox')
        if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(
                isinstance(v, (int, float)) and math.isfinite(v) for v in box):
            return 'malformed bbox', f'bbox {box!r} is not 4 finite numbers [x, y, w, h]'
        x, y, w, h = box
        if w < 1 or h < 1:
            return 'degenerate bbox', f'degenerate bbox {list(box)} (w or h < 1)'
        area = ann.get('area')
        if not isinstance(area, (int, float)) or not area > 0:
            return 'non-positive area', f'area {area!r} is not > 0'
        if min(x + w, img['width']) - max(x, 0) <= 0 or \
                min(y + h, img['height']) - max(y, 0) <= 0:
            return 'bbox outside image', (
                f"bbox {list(box)} lies outside its {img['width']}x{img['height']} image "
                f"(id {img.get('id')})")
        if ann.get('category_id') not in categories:
            return 'unknown category', (
                f"unknown category_id {ann.get('category_id')!r} (not in 'categories')")
        return '', ''

    def parse_data_info(self, raw_data_info: dict):
        api = self._api()
        if not getattr(self, '_ids_checked', False):
            self._check_image_ids(api)
            self._ids_checked = True
            self._annotations_key = 'annotations' in api.dataset
            self._num_annotations = len(api.dataset.get('annotations') or [])
        img = raw_data_info['raw_img_info']
        good = []
        for ann in raw_data_info['raw_ann_info']:
            kind, problem = ('', '') if ann.get('ignore', False) else \
                self.annotation_problem(ann, img, api.cats)
            if kind:
                self.bad_annotations.append((ann.get('id'), kind, problem))
            else:
                good.append(ann)
        return super().parse_data_info(dict(raw_data_info, raw_ann_info=good))

    def load_data_list(self) -> List[dict]:
        self.bad_annotations, self._ids_checked = [], False
        self._annotations_key, self._num_annotations = False, 0
        data_list = super().load_data_list()
        if not data_list:
            raise ValueError(f'{self.ann_file}: no images in the annotation file')
        if getattr(self, '_annotations_key', False) and not self._num_annotations:
            # mmdet went on and, with filter_empty_gt, failed in mmengine's serialisation
            # with "need at least one array to concatenate"
            raise ValueError(f'{self.ann_file}: the annotation list is empty ("annotations": '
                             f'[] for {len(data_list)} images)')
        if self.bad_annotations:
            self._report()
        return data_list

    def filter_data(self) -> List[dict]:
        kept = super().filter_data()
        if not kept and self.data_list and not self.test_mode:
            raise ValueError(
                f'{self.ann_file}: no training image left: none of its {len(self.data_list)} '
                f"images has an annotation of the classes {list(self.metainfo['classes'])} "
                f'(filter_cfg={self.filter_cfg})')
        return kept

    def _report(self):
        bad = self.bad_annotations
        kinds = Counter(kind for _, kind, _ in bad)
        listed = '; '.join(f'annotation id {i}: {p}' for i, _, p in bad[:_SHOWN])
        more = f' (and {len(bad) - _SHOWN} more)' if len(bad) > _SHOWN else ''
        if self.on_bad_annotation == 'error':
            raise ValueError(
                f"{self.ann_file}: {len(bad)} bad annotation(s): {listed}{more}. Fix the file "
                f"or set on_bad_annotation='skip' in the dataset config to drop them.")
        MMLogger.get_current_instance().warning(
            f'{self.ann_file}: skipped {len(bad)} bad annotation(s) '
            f'(on_bad_annotation=skip; by kind {dict(kinds)}): {listed}{more}')


@DATASETS.register_module()
class CheckedCocoDataset(CheckedAnnotationsMixin, CocoDataset):
    """``CocoDataset`` that reports bad annotations (``on_bad_annotation``)."""


@DATASETS.register_module()
class CheckedLVISV1Dataset(CheckedAnnotationsMixin, LVISV1Dataset):
    """``LVISV1Dataset`` that reports bad annotations (``on_bad_annotation``)."""


@DATASETS.register_module()
class CheckedObjects365V2Dataset(CheckedAnnotationsMixin, Objects365V2Dataset):
    """``Objects365V2Dataset`` that reports bad annotations (``on_bad_annotation``)."""
