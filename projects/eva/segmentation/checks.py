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
            super()._load_seg_map(results)
        except FileNotFoundError as e:
            raise FileNotFoundError(f'label map not found: {path} (for image {img})') from e
        except Exception as e:  # pillow: UnidentifiedImageError; cv2: None -> AttributeError
            raise ValueError(f'cannot decode label map {path} (for image {img}): '
                             f'{type(e).__name__}') from e
        seg, ori = results['gt_seg_map'], results.get('ori_shape')
        if ori is not None and tuple(seg.shape[:2]) != tuple(ori[:2]):
            raise ValueError(
                f'label map {path} is {seg.shape[1]}x{seg.shape[0]} (WxH) but its image {img} '
                f'is {ori[1]}x{ori[0]}: they must have the same size')
