"""What ``tools/train.py`` / ``tools/test.py`` add to every config, in one place.

Training: ``WorkDirLockHook`` (one run per work dir), ``FiniteLossHook`` (NaN / inf stops
the run), ``TorchRNGStateHook`` (resumed runs draw the same random numbers),
``AtomicCheckpointHook`` in place of mmengine's ``CheckpointHook``
(crash while saving loses nothing), ``--resume`` without a path falls back past a truncated
latest checkpoint. Training and testing: ``CheckpointFitHook`` (a checkpoint of another model
is an error), hook arguments checked against the hooks' signatures before the Runner
builds anything, bad images named (``inputs.py``).
"""
import difflib
import inspect

from mmengine.config import Config

CHECKPOINT_HOOKS = ('CheckpointHook', 'mmengine.CheckpointHook')
COLLATES = ('default_collate', 'mmengine.default_collate')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
EPOCH_LOOPS = ('EpochBasedTrainLoop', 'mmengine.EpochBasedTrainLoop')
COCO_METRICS = ('CocoMetric', 'mmdet.CocoMetric')


def _hook_class(type_, scope):
    """The hook class a config names, resolved as the Runner will (its default scope)."""
    if not isinstance(type_, str):
        return type_ if inspect.isclass(type_) else None
    from mmengine.registry import HOOKS, DefaultScope
    try:
        with DefaultScope.overwrite_default_scope(scope):
            return HOOKS.get(type_)
    except Exception:  # noqa: BLE001 - unknown scope: the Runner will report it
        return None


def check_hook_args(cfg: Config, source: str = 'config') -> None:
    """A misspelt hook argument is an error naming the config key, before training starts.

    Hooks without ``**kwargs`` would fail in the Runner with a bare ``unexpected keyword
    argument``; ``CheckpointHook`` takes ``**kwargs`` and passed a typo such as
    ``intervl=1`` on to ``Runner.save_checkpoint``, which failed at the first save, after a
    whole epoch of training.
    """
    from .checkpoint import check_save_checkpoint_args
    scope = cfg.get('default_scope')
    entries = [(f'default_hooks.{k}', v) for k, v in (cfg.get('default_hooks') or {}).items()]
    entries += [(f'custom_hooks[{i}]', v) for i, v in enumerate(cfg.get('custom_hooks') or [])]
    for where, hook in entries:
        if not isinstance(hook, dict) or 'type' not in hook:
            continue
        cls = _hook_class(hook['type'], hook.get('_scope_', scope))
        if cls is None:
            continue
        params = inspect.signature(cls.__init__).parameters
        names = [n for n in params if n != 'self']
        takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
        given = [k for k in hook if k not in ('type', '_scope_', '_delete_')]
        from mmengine.hooks import CheckpointHook
        if takes_kwargs and issubclass(cls, CheckpointHook):
            known = set(params) | set(inspect.signature(CheckpointHook.__init__).parameters)
            extra = {k: hook[k] for k in given if k not in known}
            try:
                check_save_checkpoint_args(cls.__name__, extra)
            except TypeError as e:
                raise TypeError(f'{source}: {where}: {e}') from None
            continue
        if takes_kwargs:
            continue  # cannot tell
        unknown = [k for k in given if k not in params]
        if unknown:
            hints = '; '.join(
                f'{k!r}: did you mean {m[0]!r}?' if m else f'{k!r}: no such argument'
                for k in unknown for m in [difflib.get_close_matches(k, names, n=1)])
            raise TypeError(f'{source}: {where} ({cls.__name__}): unknown argument(s) '
                            f'{unknown} ({hints}); arguments: {names}')


def _datasets(node):
    """A dataloader's dataset configs, through wrappers (``dataset=dict(dataset=...)``)."""
    while isinstance(node, dict):
        yield node
        node = node.get('dataset')


def _fill_video_num_classes(cfg: Config) -> None:
    """``CheckedVideoDataset`` checks its labels against ``num_classes``; configs give the
    number to the head only, so the head's is used where the dataset has none."""
    head = (cfg.get('model') or {}).get('cls_head') or {}
    num_classes = head.get('num_classes') if isinstance(head, dict) else None
    if not num_classes:
        return
    for loader in LOADERS:
        for ds in _datasets((cfg.get(loader) or {}).get('dataset')):
            if str(ds.get('type', '')).split('.')[-1] == 'CheckedVideoDataset' \
                    and ds.get('num_classes') is None:
                ds['num_classes'] = num_classes


def _coco_metric_with_zeros(cfg: Config) -> None:
    """mmdet's ``CocoMetric`` returns no metric at all when no image has a detection
    (tools/test.py exited 0 with nothing): ``EVACocoMetric`` reports zeros."""
    for key in ('val_evaluator', 'test_evaluator'):
        evaluator = cfg.get(key)
        for metric in evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]:
            if isinstance(metric, dict) and metric.get('type') in COCO_METRICS:
                from ..detection import metrics  # noqa: F401  (registers EVACocoMetric)
                metric['type'] = 'mmdet.EVACocoMetric'


def _resumable_epoch_loop(cfg: Config) -> None:
    """mmengine's ``EpochBasedTrainLoop`` restarts an interrupted epoch from its first batch:
    resumed from an iteration checkpoint (``checkpoint.by_epoch=False``, as the CLIP configs
    save), the video and CLIP demos trained 14 iterations instead of 12 with other losses.
    ``ResumableEpochBasedTrainLoop`` (same arguments) continues at the next batch."""
    loop = cfg.get('train_cfg')
    if not isinstance(loop, dict):
        return
    if loop.get('type') in EPOCH_LOOPS or ('type' not in loop and loop.get('by_epoch')):
        loop.pop('by_epoch', None)
        loop['type'] = 'ResumableEpochBasedTrainLoop'


def add_safety(cfg: Config, mode: str, source: str = 'config') -> Config:
    """Add this module's hooks and checks to ``cfg`` for ``mode`` 'train' or 'test'."""
    from . import checkpoint, classes, hooks, inputs, lock  # noqa: F401  (register the hooks)
    for loader in LOADERS:  # batches of mixed sizes are named
        collate = (cfg.get(loader) or {}).get('collate_fn')
        if isinstance(collate, dict) and collate.get('type') in COLLATES:
            collate['type'] = 'eva_default_collate'
    _fill_video_num_classes(cfg)
    _coco_metric_with_zeros(cfg)
    hook_list = list(cfg.get('custom_hooks') or [])
    present = {h.get('type') for h in hook_list if isinstance(h, dict)}
    # tools/test.py: every tensor the checkpoint holds must fit; load_from may swap a head
    wanted = [dict(type='CheckpointFitHook', strict_shapes=mode == 'test')]
    if mode == 'train':
        wanted.append(dict(type='DatasetClassesHook'))  # val's class list = the training set's
        # one run per work dir; FiniteLossHook before any user hook reads the outputs; RNG
        # state last
        wanted += [dict(type='WorkDirLockHook'), dict(type='FiniteLossHook'),
                   dict(type='TorchRNGStateHook')]
        _resumable_epoch_loop(cfg)
        default_hooks = cfg.get('default_hooks')
        if default_hooks is None:
            cfg.default_hooks = default_hooks = {}
        ckpt = default_hooks.get('checkpoint', 'unset')
        if ckpt == 'unset':  # mmengine's default: CheckpointHook(interval=1)
            default_hooks['checkpoint'] = dict(type='AtomicCheckpointHook', interval=1)
        elif isinstance(ckpt, dict) and ckpt.get('type', 'CheckpointHook') in CHECKPOINT_HOOKS:
            ckpt['type'] = 'AtomicCheckpointHook'
    cfg.custom_hooks = hook_list + [h for h in wanted if h['type'] not in present]
    check_hook_args(cfg, source)
    return cfg


def resume_from(work_dir: str):
    """``--resume`` without a path: the newest readable checkpoint of ``work_dir``."""
    from .checkpoint import find_resumable_checkpoint
    return find_resumable_checkpoint(work_dir)
