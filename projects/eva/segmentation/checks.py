"""Clear errors for bad label maps, in place of mmseg's.

mmseg 1.2.2's ``LoadAnnotations`` fails on an undecodable label map with ``'NoneType' object
has no attribute 'squeeze'`` and accepts a label map whose size differs from its image: the
random crop then cuts different regions from both and training goes on with wrong labels.
This subclass is registered under its own name: our configs ask for ``CheckedLoadAnnotations``
and mmseg's ``LoadAnnotations`` stays what it is for every other config; good input loads
exactly as with mmseg's.
"""
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CheckedLoadAnnotations(LoadAnnotations):
    """``LoadAnnotations`` naming a missing / undecodable label map, or one whose size is not
    its image's (``ori_shape``: the size before any resize, so test pipelines that load the
    label after resizing the image are fine)."""

    def _load_seg_map(self, results: dict) -> None:
        path, img = results.get('seg_map_path'), results.get('img_path')
        try:
            self._check_stored_values(path, img)
            super()._load_seg_map(results)
        except FileNotFoundError as e:
            raise FileNotFoundError(f'label map not found: {path} (for image {img})') from e
        except StoredValueError:
            raise
        except Exception as e:  # pillow: UnidentifiedImageError; cv2: None -> AttributeError
            raise ValueError(f'cannot decode label map {path} (for image {img}): '
                             f'{type(e).__name__}') from e
        seg, ori = results['gt_seg_map'], results.get('ori_shape')
        if ori is not None and tuple(seg.shape[:2]) != tuple(ori[:2]):
            raise ValueError(
                f'label map {path} is {seg.shape[1]}x{seg.shape[0]} (WxH) but its image {img} '
                f'is {ori[1]}x{ori[0]}: they must have the same size')

    def _check_stored_values(self, path: str, img: str) -> None:
        """mmseg casts a label map to uint8 when it loads it, so a 16-bit value 258 became
        class 2 and 301 became 45 (mIoU 35.09 -> 29.22 on the demo, exit 0). A label map that
        is not an 8-bit PNG is decoded as stored and must hold values in [0, 255]."""
        import mmcv
        import numpy as np
        from mmengine import fileio
        data = fileio.get(path, backend_args=self.backend_args)
        # PNG: bit depth is byte 24 of the IHDR chunk; 8-bit maps (nearly all) need no decode
        if data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 24 and data[24] <= 8:
            return
        seg = mmcv.imfrombytes(data, flag='unchanged', backend=self.imdecode_backend)
        if seg is None or seg.dtype == np.uint8:
            return  # undecodable: mmseg's own load raises, named below
        values = np.unique(seg)
        bad = values[(values < 0) | (values > 255)]
        if bad.size:
            raise StoredValueError(
                f'label map {path} (for image {img}) holds values {bad[:10].tolist()} that a '
                f'uint8 label cannot hold (stored as {seg.dtype}); mmseg would read them '
                f'modulo 256 (as {(bad[:10] % 256).tolist()}). Class ids must be 0..255: '
                'fix the file or map the values.')


class StoredValueError(ValueError):
    """A label map value that does not survive mmseg's cast to uint8."""


def check_label_values(data_samples, num_classes: int, ignore_index: int, pad_value=None):
    """Every ground-truth value must be a class id in ``[0, num_classes)`` or ``ignore_index``.

    mmseg does not check: in testing, values >= num_classes fall outside ``IoUMetric``'s
    histogram and the mIoU is silently wrong (34.9 instead of 43.8 on the demo with a few bad
    label maps); in training the Mask2Former matcher fails with an ``IndexError`` deep inside
    mmdet. The error names the label map (``seg_map_path``) and its bad values. Run by
    ``EVAEncoderDecoder`` on the batch it receives (after augmentation, which only moves
    values: nearest-neighbour resizing and padding with ``pad_value``).
    """
    import torch
    allowed = {ignore_index} | ({pad_value} if pad_value is not None else set())
    for sample in data_samples or []:
        seg = getattr(sample, 'gt_sem_seg', None)
        if seg is None:
            continue
        values = torch.unique(seg.data)
        bad = [int(v) for v in values.tolist()
               if not (0 <= v < num_classes) and int(v) not in allowed]
        if bad:
            path = sample.metainfo.get('seg_map_path') or sample.metainfo.get('img_path')
            raise ValueError(
                f'label map {path}: values {bad} are not class ids in [0, {num_classes}) nor '
                f'the ignore index {ignore_index} (values present: '
                f'{[int(v) for v in values.tolist()][:20]}). Fix the file, or map the values '
                "(the dataset's label_map / reduce_zero_label).")
