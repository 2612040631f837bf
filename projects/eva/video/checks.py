"""Clear errors on the video data path, in place of mmaction2's.

mmaction2 1.2.0 reports a corrupt video as decord's ``Error reading 700 bytes...`` (no file
name), an empty annotation list as numpy's ``need at least one array to concatenate`` and a
blank line as a video whose path is the data folder. These subclasses are registered under
their own names (``CheckedVideoDataset``, ``CheckedDecordInit``, ``CheckedDecordDecode``), which
our configs use; mmaction2's classes stay registered as they are. On good input they behave
exactly as mmaction2's.
"""
import os.path as osp

from mmaction.datasets import VideoDataset
from mmaction.datasets.transforms import DecordDecode, DecordInit
from mmaction.registry import DATASETS, TRANSFORMS
from mmengine.fileio import list_from_file


@DATASETS.register_module()
class CheckedVideoDataset(VideoDataset):
    """``VideoDataset`` whose annotation-list errors name the file (and line)."""

    def load_data_list(self):
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'video annotation list not found: {self.ann_file}')
        lines = list_from_file(self.ann_file)
        blank = [i + 1 for i, line in enumerate(lines) if not line.strip()]
        if len(blank) == len(lines):
            raise ValueError(f'{self.ann_file}: the video annotation list is empty')
        if blank:
            raise ValueError(f'{self.ann_file}: blank line(s) {blank[:5]}; every line must be '
                             f'"<video path>{self.delimiter}<label>"')
        try:
            return super().load_data_list()
        except ValueError as e:
            raise ValueError(f'{self.ann_file}: cannot parse the list ({e}); every line must be '
                             f'"<video path>{self.delimiter}<label>"') from e


@TRANSFORMS.register_module()
class CheckedDecordInit(DecordInit):
    """``DecordInit`` naming the video that is missing, unreadable or has no frames."""

    def transform(self, results: dict) -> dict:
        name = results.get('filename')
        try:
            results = super().transform(results)
        except FileNotFoundError as e:
            raise FileNotFoundError(f'video not found: {name}') from e
        except Exception as e:  # decord: DECORDError / RuntimeError without the file name
            raise RuntimeError(f'cannot open video {name}: {type(e).__name__}: '
                               f'{str(e)[:200]}') from e
        if results['total_frames'] < 1:
            raise ValueError(f'video {name} has no frames')
        return results


@TRANSFORMS.register_module()
class CheckedDecordDecode(DecordDecode):
    """``DecordDecode`` naming the video whose frames cannot be decoded (truncated file)."""

    def transform(self, results: dict) -> dict:
        try:
            return super().transform(results)
        except Exception as e:
            raise RuntimeError(f"cannot decode the frames of video {results.get('filename')}: "
                               f'{type(e).__name__}: {str(e)[:200]}') from e
