"""The validation set's class list must be the training set's.

Folder datasets (mmpretrain's ``CustomDataset``) number their classes by sorted folder name: a
class folder renamed in ``val`` (``val/3`` -> ``val/three``) shifted every later class id and
the demo reported 24.3 % top-1 instead of 73.3 %, exit 0. :class:`DatasetClassesHook` (added to
every training run by ``add_safety``) compares the two lists before the first iteration; the
checkpoint's classes (``dataset_meta``, saved by mmengine) against the test or training set
are ``CheckpointFitHook``'s check (``tools/test.py``, ``--resume``).
"""
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def dataset_classes(dataset) -> Optional[tuple]:
    """``dataset.metainfo['classes']`` (through wrappers), or None."""
    for _ in range(4):
        meta = getattr(dataset, 'metainfo', None)
        if isinstance(meta, dict) and meta.get('classes'):
            return tuple(str(c) for c in meta['classes'])
        dataset = getattr(dataset, 'dataset', None)
        if dataset is None:
            return None
    return None


def _describe(dataset) -> str:
    for _ in range(4):
        root = getattr(dataset, 'data_root', None) or getattr(dataset, 'ann_file', None)
        prefix = getattr(dataset, 'data_prefix', None)
        if root or prefix:
            return f'{type(dataset).__name__}({root or ""}{" " + str(prefix) if prefix else ""})'
        dataset = getattr(dataset, 'dataset', None)
        if dataset is None:
            break
    return 'the dataset'


def check_same_classes(expected: Sequence[str], found: Sequence[str], expected_what: str,
                       found_what: str) -> None:
    expected, found = tuple(expected), tuple(found)
    if expected == found:
        return
    moved = [f'id {i}: {a!r} vs {b!r}' for i, (a, b) in enumerate(zip(expected, found))
             if a != b]
    only_e = [c for c in expected if c not in found]
    only_f = [c for c in found if c not in expected]
    raise ValueError(
        f'the classes of {found_what} differ from those of {expected_what} '
        f'({len(found)} vs {len(expected)} classes; first differences: {moved[:5]}; only in '
        f'{found_what}: {only_f[:10]}; only in {expected_what}: {only_e[:10]}). Class ids '
        'follow the class list, so every prediction would be scored against another label: '
        'fix the folder / class names, or set the same metainfo=dict(classes=...) on both.')


@HOOKS.register_module()
class DatasetClassesHook(Hook):
    """Training: the validation set's classes must be the training set's (datasets without a
    class list are not compared)."""
    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        train = runner.train_dataloader.dataset
        train_classes = dataset_classes(train)
        from mmengine.runner import BaseLoop
        if train_classes is None or not isinstance(getattr(runner, '_val_loop', None), BaseLoop):
            return
        val = runner.val_dataloader.dataset
        val_classes = dataset_classes(val)
        if val_classes is not None:
            check_same_classes(train_classes, val_classes, f'the training set {_describe(train)}',
                               f'the validation set {_describe(val)}')
