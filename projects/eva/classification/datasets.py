"""ImageNet evaluation sets on their standard on-disk layouts, labelled in IN-1K index space.

=========  ===========================================================  ======================
variant    layout under ``data_root``                                    classes
=========  ===========================================================  ======================
val        ``val/<wnid>/*.JPEG`` (ImageFolder val)                       1000
v2         ``<0..999>/*.jpeg`` (imagenetv2-matched-frequency-format-val)  1000
sketch     ``<wnid>/*.JPEG`` (ImageNet-Sketch ``sketch/``)                1000
a, r       ``<wnid>/*.jpg`` (imagenet-a / imagenet-r)                     200-class subsets
real       ``val/**/ILSVRC2012_val_*.JPEG`` + ``real.json``                multi-label
objectnet  ``images/<folder>/*.png`` + ``mappings/*.json``                113 overlapping
=========  ===========================================================  ======================

The model always predicts 1000 IN-1K logits; :class:`RobustAccuracy` reads ``class_subset``
(A/R: argmax restricted to the 200 classes) or ``objectnet_groups`` from the dataset meta.
"""
import json
import os
import os.path as osp
from typing import List

from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def imagenet1k_wnids() -> List[str]:
    """The 1000 IN-1K synsets in the standard (sorted) class order."""
    with open(osp.join(osp.dirname(__file__), 'imagenet1k_wnids.txt')) as f:
        return [line.strip() for line in f if line.strip()]


def _images(folder: str) -> List[str]:
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTS))


@DATASETS.register_module()
class ImageNetVariant(BaseDataset):
    """IN-1K val, V2, ReaL, Sketch, A, R and ObjectNet (see the module docstring)."""

    VARIANTS = ('val', 'v2', 'sketch', 'a', 'r', 'real', 'objectnet')

    def __init__(self, data_root: str, variant: str, real_json: str = 'real.json', **kwargs):
        if variant not in self.VARIANTS:
            raise ValueError(f'variant must be one of {self.VARIANTS}, got {variant!r}')
        self.variant = variant
        self.real_json = real_json
        super().__init__(ann_file='', data_root=data_root, **kwargs)

    def load_data_list(self):
        root = self.data_root
        if not osp.isdir(root):
            raise FileNotFoundError(f'ImageNet-{self.variant} root not found: {root}')
        wnids = imagenet1k_wnids()
        index = {w: i for i, w in enumerate(wnids)}
        loader = getattr(self, f'_load_{self.variant}', None) or self._load_wnid_folders
        data_list = loader(root, index)
        if not data_list:
            raise RuntimeError(f'no images found for ImageNet-{self.variant} under {root}')
        return data_list

    def _load_wnid_folders(self, root, index):
        if self.variant == 'val' and osp.isdir(osp.join(root, 'val')):
            root = osp.join(root, 'val')
        folders = sorted(d for d in os.listdir(root) if osp.isdir(osp.join(root, d)))
        unknown = [d for d in folders if d not in index]
        if unknown:
            raise ValueError(f'{root}: folders {unknown[:5]} are not IN-1K synsets')
        if self.variant in ('a', 'r'):
            self._metainfo['class_subset'] = [index[d] for d in folders]
        return [dict(img_path=osp.join(root, d, f), gt_label=index[d])
                for d in folders for f in _images(osp.join(root, d))]

    def _load_v2(self, root, index):
        folders = sorted((d for d in os.listdir(root) if d.isdigit()), key=int)
        if not folders:
            raise ValueError(f'{root}: ImageNet-V2 expects class folders named 0..999')
        return [dict(img_path=osp.join(root, d, f), gt_label=int(d))
                for d in folders for f in _images(osp.join(root, d))]

    def _load_real(self, root, index):
        img_dir = osp.join(root, 'val') if osp.isdir(osp.join(root, 'val')) else root
        path = osp.join(root, self.real_json)
        if not osp.isfile(path):
            raise FileNotFoundError(f'ImageNet-ReaL labels not found: {path}')
        with open(path) as f:
            real = json.load(f)
        # flat or in class folders: ReaL is indexed by the sorted ILSVRC2012_val_* file names
        files = sorted((osp.join(d, f) for d, _, names in os.walk(img_dir) for f in names
                        if f.lower().endswith(IMAGE_EXTS)), key=osp.basename)
        if len(files) != len(real):
            raise ValueError(f'{path} has {len(real)} entries but {img_dir} has {len(files)} '
                             'images (expected the 50000 ILSVRC2012_val_* files)')
        # images without any ReaL label are excluded from the score (the ReaL protocol)
        return [dict(img_path=f, gt_label=-1, real_labels=labels)
                for f, labels in zip(files, real)]

    def _load_objectnet(self, root, index):
        maps = osp.join(root, 'mappings')
        with open(osp.join(maps, 'folder_to_objectnet_label.json')) as f:
            folder_to_label = json.load(f)
        with open(osp.join(maps, 'objectnet_to_imagenet_1k.json')) as f:
            on_to_in = json.load(f)
        with open(osp.join(maps, 'imagenet_to_label_2012_v2')) as f:
            in_names = [line.strip() for line in f]
        name_to_idx = {n: i for i, n in enumerate(in_names)}
        labels = sorted(on_to_in)  # the 113 ObjectNet classes that overlap IN-1K
        groups = [[name_to_idx[n] for n in on_to_in[c].split('; ')] for c in labels]
        self._metainfo['objectnet_groups'] = groups
        label_idx = {c: i for i, c in enumerate(labels)}
        img_root = osp.join(root, 'images')
        data = []
        for folder in sorted(os.listdir(img_root)):
            label = folder_to_label.get(folder)
            if label not in label_idx:
                continue  # ObjectNet classes without an IN-1K counterpart are not scored
            data += [dict(img_path=osp.join(img_root, folder, f), gt_label=label_idx[label])
                     for f in _images(osp.join(img_root, folder))]
        return data
