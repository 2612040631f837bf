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
            data_list = super().load_data_list()
        except ValueError as e:
            raise ValueError(f'{self.ann_file}: cannot parse the list ({e}); every line must be '
                             f'"<video path>{self.delimiter}<label>"') from e
        self._check_labels(data_list)
        return data_list

    def _check_labels(self, data_list):
        """Labels must be class ids in ``[0, num_classes)``: a label 9 with 4 classes was
        counted wrong in testing and failed training with a bare ``IndexError: Target 9 is out
        of bounds``. ``num_classes`` is the dataset's, which ``add_safety`` fills from the
        model's ``cls_head`` when the config leaves it out. One entry per line (blank lines
        are refused above), so entry i is line i + 1."""
        if not self.num_classes:
            return
        bad = []
        for line, info in enumerate(data_list, start=1):
            labels = info.get('label')
            for v in (labels if isinstance(labels, (list, tuple)) else [labels]):
                if v is None or (int(v) == -1 and not self.multi_class):
                    continue  # mmaction2's placeholder of a list without labels
                if not 0 <= int(v) < self.num_classes:
                    bad.append(f'line {line}: label {int(v)}')
        if bad:
            raise ValueError(f'{self.ann_file}: {len(bad)} label(s) outside the '
                             f'{self.num_classes} classes [0, {self.num_classes}): '
                             f'{"; ".join(bad[:5])}')


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
