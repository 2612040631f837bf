"""Config keys that nothing reads, and values that fail only later, named when the Runner is
built.

mmengine accepts any key: ``--cfg-options optim_wrapper.paramwise_cfg.layer_decay_rat=0.9``,
``env_cfg.cudnn_benchmrk=True``, a misspelt section (``train_config.max_epochs=3``), mmengine
1.x names (``optimizer.lr=0.1``) and config variables that were already used when the file was
read (``max_epochs=3``) all trained with exit 0 and changed nothing. Values fail late:
``train_cfg.val_interval=0`` with ``ZeroDivisionError`` after the first epoch, a
``drop_path_rate='abc'`` as a bare ``TypeError`` deep in the model, a
``default_hooks.checkpoint.interval=0`` silently saved only the last epoch.
"""
import difflib
import inspect
import numbers
from typing import Iterable, List, Optional

# the top-level keys mmengine's Runner.from_cfg / FlexibleRunner.from_cfg (and the Runner's
# self.cfg.get calls: model wrapper, compile, sync_bn...) and our tools read; the one list both
# checks use (check_top_level_keys for the file, check_cfg_options for --cfg-options)
TOP_LEVEL_KEYS = (
    'model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg',
    'val_cfg', 'test_cfg', 'auto_scale_lr', 'optim_wrapper', 'param_scheduler',
    'val_evaluator', 'test_evaluator', 'default_hooks', 'custom_hooks', 'data_preprocessor',
    'load_from', 'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level', 'visualizer',
    'default_scope', 'randomness', 'experiment_name', 'cfg', 'custom_imports', 'tta_model',
    'tta_pipeline', 'runner_type', 'strategy', 'compile', 'model_wrapper_cfg',
    'find_unused_parameters', 'sync_bn', 'activation_checkpointing', 'efficient_conv_bn_eval',
    'init_weights_for_test_or_val')
# config variables the OpenMMLab base configs define that sit close to a key above but are
# not typos (vis_backends: mmdet's / mmseg's default_runtime.py, read into visualizer there)
KNOWN_VARIABLES = ('train_pipeline', 'test_pipeline', 'val_pipeline', 'eval_pipeline',
                   'dataset_type', 'data_root', 'backend_args', 'vis_backends')
# mmengine 0.x / mmcv 1.x names and where they live now
OLD_NAMES = {
    'optimizer': 'optim_wrapper.optimizer', 'optimizer_config': 'optim_wrapper',
    'lr_config': 'param_scheduler', 'runner': 'train_cfg', 'total_epochs': 'train_cfg.max_epochs',
    'evaluation': 'val_evaluator / train_cfg.val_interval', 'data': 'train_dataloader',
    'checkpoint_config': 'default_hooks.checkpoint', 'log_config': 'default_hooks.logger',
    'workflow': 'train_cfg', 'dist_params': 'env_cfg.dist_cfg', 'momentum_config':
    'param_scheduler', 'fp16': 'optim_wrapper.type=AmpOptimWrapper (or --amp)'}
# sections without a ``type`` whose readers take a fixed set of keys
SECTION_KEYS = {
    'env_cfg': ('cudnn_benchmark', 'mp_cfg', 'dist_cfg', 'resource_limit'),
    'randomness': ('seed', 'deterministic', 'diff_rank_seed'),
    'auto_scale_lr': ('enable', 'base_batch_size'),
}
# paramwise_cfg keys per optimizer-wrapper constructor
PARAMWISE_KEYS = {
    'DefaultOptimWrapperConstructor': (
        'custom_keys', 'bias_lr_mult', 'bias_decay_mult', 'norm_decay_mult', 'dwconv_decay_mult',
        'flat_decay_mult', 'dcn_offset_lr_mult', 'bypass_duplicate'),
    'EVALayerDecayOptimWrapperConstructor': (
        'layer_decay_rate', 'no_decay_1d', 'no_decay_keys', 'custom_keys'),
}
# where a ``type`` in a config section is looked up first
REGISTRY_OF = {'model': 'MODELS', 'default_hooks': 'HOOKS', 'custom_hooks': 'HOOKS',
               'param_scheduler': 'PARAM_SCHEDULERS', 'train_cfg': 'LOOPS', 'val_cfg': 'LOOPS',
               'test_cfg': 'LOOPS', 'val_evaluator': 'METRICS', 'test_evaluator': 'METRICS',
               'visualizer': 'VISUALIZERS', 'log_processor': 'LOG_PROCESSORS',
               'optim_wrapper': 'OPTIM_WRAPPERS', 'strategy': 'STRATEGIES'}
ALL_REGISTRIES = ('MODELS', 'HOOKS', 'DATASETS', 'TRANSFORMS', 'DATA_SAMPLERS', 'OPTIMIZERS',
                  'OPTIM_WRAPPERS', 'PARAM_SCHEDULERS', 'LOOPS', 'METRICS', 'VISUALIZERS',
                  'VIS_BACKENDS', 'LOG_PROCESSORS', 'STRATEGIES', 'TASK_UTILS', 'FUNCTIONS')


def _closest(key: str, names: Iterable[str]) -> str:
    match = difflib.get_close_matches(key, sorted(set(names)), n=1, cutoff=0.5)
    return f'did you mean {match[0]!r}?' if match else f'known: {sorted(set(names))}'


def _resolve(type_, path: List[str], scope: Optional[str]):
    """The class or function a config ``type`` names, resolved as the Runner will."""
    if not isinstance(type_, str):
        return type_ if callable(type_) else None
    import mmengine.registry as reg
    order = [REGISTRY_OF.get(path[0])] if path else []
    if path[-1:] == ['optimizer']:
        order = ['OPTIMIZERS']
    elif 'dataset' in path:
        order = ['DATASETS']
    elif 'sampler' in path or 'batch_sampler' in path:
        order = ['DATA_SAMPLERS']
    for name in [o for o in order if o] + list(ALL_REGISTRIES):
        try:
            with getattr(reg, name).switch_scope_and_registry(scope) as registry:
                found = registry.get(type_)
        except Exception:  # noqa: BLE001 - unknown scope or type: the Runner reports it
            found = None
        if found is not None:
            return found
    return None


def _accepted_keys(owner: dict, path: List[str], scope: Optional[str], merged: dict,
                   amp: bool = False):
    """The keys the reader of ``owner`` (the config dict at ``path``) takes, or None when
    that cannot be told (``**kwargs``, unknown type, free-form dict)."""
    dotted = '.'.join(path)
    if path[:1] in (['default_hooks'], ['custom_hooks']):
        return None  # safety.check_hook_args checks hook arguments, from files too
    if dotted in SECTION_KEYS:
        return SECTION_KEYS[dotted]
    if dotted == 'optim_wrapper.paramwise_cfg':
        constructor = (merged.get('optim_wrapper') or {}).get(
            'constructor', 'DefaultOptimWrapperConstructor')
        return PARAMWISE_KEYS.get(str(constructor).split('.')[-1])
    type_ = owner.get('type')
    if path == ['optim_wrapper'] and amp:
        type_ = 'AmpOptimWrapper'  # what --amp makes of it
    if type_ is None:
        if path in (['train_cfg'], ['val_cfg'], ['test_cfg']):
            type_ = {'train_cfg': 'EpochBasedTrainLoop' if owner.get('by_epoch', True)
                     else 'IterBasedTrainLoop', 'val_cfg': 'ValLoop',
                     'test_cfg': 'TestLoop'}[path[0]]
        elif path == ['optim_wrapper']:
            type_ = 'OptimWrapper'
        else:
            return None
    target = _resolve(type_, path, scope)
    if target is None:
        return None
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    keys = {n for n in params if n not in ('self', 'runner', 'dataloader')} | {'type', '_scope_'}
    if path == ['optim_wrapper']:
        keys |= {'constructor', 'paramwise_cfg', 'optimizer'}
    if path and path[0] in ('train_cfg', 'val_cfg', 'test_cfg') and 'type' not in owner:
        keys |= {'by_epoch'}
    return keys


def check_top_level_keys(cfg, source: str) -> None:
    """A key of the config file one typo away from a key something reads is almost surely a
    mistake that mmengine would ignore silently."""
    for key in cfg.keys():
        if key in TOP_LEVEL_KEYS or key in KNOWN_VARIABLES:
            continue
        close = difflib.get_close_matches(key, TOP_LEVEL_KEYS, n=1, cutoff=0.9)
        if close:
            raise KeyError(f'{source}: unknown config key {key!r}; did you mean {close[0]!r}? '
                           '(mmengine would silently ignore it)')


def check_cfg_options(cfg, options: dict, source: str, amp: bool = False) -> None:
    """Every ``--cfg-options`` key must be one something reads; checked against ``cfg``
    *before* the options are merged."""
    if not options:
        return
    scope = options.get('default_scope', cfg.get('default_scope'))
    merged = cfg.copy()
    merged.merge_from_dict(options)
    for key in options:
        parts = key.split('.')
        top = parts[0]
        if top not in TOP_LEVEL_KEYS:
            if top in cfg:
                uses = _sections_using(cfg, top)
                raise KeyError(
                    f'--cfg-options {key}: {top!r} is a variable of {source}, already used '
                    'when the config was read; overriding it changes nothing' +
                    (f': set {", ".join(uses)} instead' if uses else ''))
            hint = (f'in this mmengine version it is {OLD_NAMES[top]!r}' if top in OLD_NAMES
                    else _closest(top, TOP_LEVEL_KEYS))
            raise KeyError(f'--cfg-options {key}: nothing reads the config key {top!r} '
                           f'({hint})')
        node, path = cfg._cfg_dict, []
        for part in parts:
            if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
                node, path = node[int(part)], path + [part]
                continue
            if not isinstance(node, dict):
                break
            if part not in node:
                # a new key: its reader must take it
                owner_path = path
                owner = _lookup(merged._cfg_dict, owner_path)
                keys = _accepted_keys(owner, owner_path, scope, merged, amp) \
                    if isinstance(owner, dict) else None
                if keys is not None and part not in keys:
                    where = '.'.join(owner_path) or 'the top level'
                    raise KeyError(f'--cfg-options {key}: {where} has no key {part!r} and '
                                   f'nothing reads it ({_closest(part, keys)})')
                break
            node, path = node[part], path + [part]


def _lookup(root, path):
    node = root
    for part in path:
        if isinstance(node, (list, tuple)) and part.isdigit():
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


def _sections_using(cfg, name: str) -> List[str]:
    """Dotted paths of keys called ``name`` inside the Runner's sections."""
    found = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == name:
                    found.append('.'.join(path + [k]))
                walk(v, path + [k])
        elif isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                walk(v, path + [str(i)])

    for top in TOP_LEVEL_KEYS:
        if top in cfg:
            walk(cfg._cfg_dict[top], [top])
    return found[:4]


# ------------------------------------------------------------------------------- values


def _positive_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def check_values(cfg, source: str) -> None:
    """Values that mmengine takes and fails on late (or never), named now."""
    train_cfg = cfg.get('train_cfg') or {}
    if 'val_interval' in train_cfg and not _positive_int(train_cfg['val_interval']):
        raise ValueError(f'{source}: train_cfg.val_interval must be a positive integer, got '
                         f'{train_cfg["val_interval"]!r} (mmengine divides by it after the '
                         'first epoch); to train without validation use --no-validate')
    for key in ('max_epochs', 'max_iters'):
        if key in train_cfg and not _positive_int(train_cfg[key]):
            raise ValueError(f'{source}: train_cfg.{key} must be a positive integer, got '
                             f'{train_cfg[key]!r}')
    hooks = cfg.get('default_hooks') or {}
    for name, hook in hooks.items():
        # add_safety gives a typeless checkpoint entry its (atomic) type
        if isinstance(hook, dict) and 'type' not in hook and name != 'checkpoint':
            raise KeyError(f'{source}: default_hooks.{name} has no type (a new hook needs one); '
                           f'{_closest(name, [k for k in hooks if k != name])}')
    ckpt = hooks.get('checkpoint')
    if isinstance(ckpt, dict) and 'interval' in ckpt:
        interval = ckpt['interval']
        if not (isinstance(interval, numbers.Integral) and not isinstance(interval, bool)
                and (interval > 0 or interval == -1)):
            raise ValueError(f'{source}: default_hooks.checkpoint.interval must be a positive '
                             f'integer (or -1: no periodic checkpoint), got {interval!r}; '
                             'with 0 mmengine saves only at the end of training')
    for path, value in _find_keys(cfg.get('model') or {}, ['model'], RATE_KEYS):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f'{source}: {path} must be a number, got {value!r} '
                            f'({type(value).__name__})')


RATE_KEYS = ('drop_path_rate', 'drop_rate', 'attn_drop_rate', 'proj_drop_rate')


def _find_keys(node, path, names):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in names:
                yield '.'.join(path + [k]), v
            yield from _find_keys(v, path + [k], names)
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _find_keys(v, path + [str(i)], names)
