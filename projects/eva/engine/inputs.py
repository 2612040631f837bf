"""Bad input images are named: an empty file, an undecodable one, a batch of mixed sizes.

* mmcv's ``LoadImageFromFile`` on a zero-byte file fails inside OpenCV with
  ``cv2.error ... !buf.empty()`` and no file name; :func:`apply` makes it a ``ValueError``
  naming the file (any other decoding error gets the file name too). Applied by
  :func:`projects.eva.compat.apply` (``named_image_errors``).
* mmengine's ``default_collate`` on samples of different sizes (a 1x1 image in a val
  pipeline without a resize) fails with ``stack expects each tensor to be equal size`` or, in
  a worker, ``Trying to resize storage that is not resizable``. ``tools/train.py`` and
  ``tools/test.py`` use :func:`eva_default_collate` instead, which names the files and sizes.
"""
import os
from collections import defaultdict

from mmengine.dataset import default_collate
from mmengine.registry import FUNCTIONS


def apply() -> None:
    from mmcv.transforms import LoadImageFromFile
    if getattr(LoadImageFromFile.transform, '_eva_named', False):
        return
    transform = LoadImageFromFile.transform

    def named_transform(self, results: dict):
        path = results.get('img_path')
        try:
            return transform(self, results)
        except FileNotFoundError:
            raise  # mmengine's message names the file
        except Exception as e:
            if not isinstance(path, str):
                raise
            if os.path.isfile(path) and os.path.getsize(path) == 0:
                raise ValueError(f'image file is empty (0 bytes): {path}') from e
            if path in str(e):
                raise
            raise ValueError(f'cannot decode image {path}: {type(e).__name__}: '
                             f'{str(e).strip()[-300:]}') from e

    named_transform._eva_named = True
    LoadImageFromFile.transform = named_transform


def _describe(sample) -> tuple:
    inputs = sample.get('inputs') if isinstance(sample, dict) else None
    shape = tuple(getattr(inputs, 'shape', ()))
    meta = getattr(sample.get('data_samples'), 'metainfo', {}) if isinstance(sample, dict) \
        else {}
    name = meta.get('img_path') or meta.get('filename') or meta.get('sample_idx', '?')
    return shape, name


@FUNCTIONS.register_module()
def eva_default_collate(data_batch):
    """mmengine's ``default_collate``; samples that cannot be stacked are named."""
    try:
        return default_collate(data_batch)
    except RuntimeError as e:
        sizes = defaultdict(list)
        for sample in data_batch:
            shape, name = _describe(sample)
            sizes[shape].append(name)
        if len(sizes) < 2:
            raise
        listed = '; '.join(f'{shape}: {names[:5]}' + (f' and {len(names) - 5} more'
                                                       if len(names) > 5 else '')
                           for shape, names in sorted(sizes.items(), key=lambda x: -len(x[1])))
        raise ValueError(
            f'cannot batch inputs of different sizes ({listed}); the pipeline must give every '
            'image one size (a Resize / CenterCrop to a fixed size), or the image is not what '
            'it should be') from e
