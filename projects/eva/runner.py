"""Config -> Runner, shared by ``tools/train.py`` and ``tools/test.py``."""
import os.path as osp

import torch
from mmengine.config import Config


# top-level keys the Runner reads; a config key one typo away from these is almost surely a
# mistake that mmengine would otherwise ignore silently
RUNNER_KEYS = (
    'model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg',
    'val_cfg', 'test_cfg', 'auto_scale_lr', 'optim_wrapper', 'param_scheduler',
    'val_evaluator', 'test_evaluator', 'default_hooks', 'custom_hooks', 'data_preprocessor',
    'load_from', 'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level', 'visualizer',
    'default_scope', 'randomness', 'experiment_name', 'cfg', 'custom_imports', 'tta_model',
    'tta_pipeline', 'runner_type', 'strategy', 'compile', 'vis_backends', 'model_wrapper_cfg')
AMP_WRAPPERS = ('AmpOptimWrapper', 'mmengine.AmpOptimWrapper')
# common config variables that sit close to a runner key but are not typos
KNOWN_VARIABLES = ('train_pipeline', 'test_pipeline', 'val_pipeline', 'eval_pipeline',
                   'data_preprocessor', 'dataset_type', 'data_root', 'backend_args')


def check_top_level_keys(cfg: Config, source: str):
    import difflib
    for key in cfg.keys():
        if key in RUNNER_KEYS or key in KNOWN_VARIABLES:
            continue
        close = difflib.get_close_matches(key, RUNNER_KEYS, n=1, cutoff=0.9)
        if close:
            raise KeyError(f'{source}: unknown config key {key!r}; did you mean {close[0]!r}? '
                           '(mmengine would silently ignore it)')


def load_config(args) -> Config:
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    check_top_level_keys(cfg, args.config)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if not torch.cuda.is_available() and cfg.get('env_cfg', {}).get('dist_cfg'):
        cfg.env_cfg.dist_cfg.backend = 'gloo'  # CPU runs (tests, demo) use gloo
        if cfg.launcher != 'none' and cfg.get('model_wrapper_cfg') is None \
                and 'runner_type' not in cfg:
            # mmengine's default DDP wrapper passes device_ids=[LOCAL_RANK], GPU only
            cfg.model_wrapper_cfg = dict(
                type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                find_unused_parameters=cfg.get('find_unused_parameters', False))
    if getattr(args, 'amp', False):
        wrapper = cfg.optim_wrapper
        if wrapper.get('type', 'OptimWrapper') not in AMP_WRAPPERS:
            if 'type' in wrapper and wrapper['type'] not in ('OptimWrapper', 'mmengine.OptimWrapper'):
                raise ValueError(f'--amp cannot convert optim_wrapper type {wrapper["type"]}')
            wrapper.type = 'AmpOptimWrapper'
            wrapper.setdefault('loss_scale', 'dynamic')
    wrapper = cfg.get('optim_wrapper')
    if (not torch.cuda.is_available() and isinstance(wrapper, dict)
            and wrapper.get('type') in AMP_WRAPPERS):
        from .engine import amp  # noqa: F401  (mmengine's AmpOptimWrapper asserts a GPU)
        wrapper.type = 'AnyDeviceAmpOptimWrapper'
    return cfg


def build_runner_from_args(args, mode: str = 'train'):
    cfg = load_config(args)
    if mode == 'train':
        if args.resume == 'auto':  # newest readable checkpoint, past a truncated one
            from .engine.safety import resume_from
            cfg.resume, cfg.load_from = True, resume_from(cfg.work_dir)
        elif args.resume is not None:
            cfg.resume, cfg.load_from = True, args.resume
        if args.no_validate:
            cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
        if args.auto_scale_lr:
            cfg.setdefault('auto_scale_lr', {})['enable'] = True
        for flag, key in (('no_pin_memory', 'pin_memory'),
                          ('no_persistent_workers', 'persistent_workers')):
            if getattr(args, flag):
                for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
                    if cfg.get(loader):
                        cfg[loader][key] = False
    else:
        cfg.load_from = args.checkpoint
        if args.tta:
            if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
                raise KeyError(f'{args.config} defines no tta_model/tta_pipeline for --tta')
            cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
            cfg.tta_model.module = cfg.model
            if cfg.model.get('data_preprocessor') is not None:
                # mmengine's BaseTTAModel gives the module its *own* data_preprocessor, which
                # the Runner fills from the config's top-level variable: keep the module's
                cfg.tta_model.setdefault('data_preprocessor', cfg.model.data_preprocessor)
            cfg.model = cfg.tta_model
        if args.out:
            evaluator = cfg.test_evaluator
            evaluator = list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]
            evaluator.append(dict(type='mmengine.DumpResults', out_file_path=args.out))
            cfg.test_evaluator = evaluator
        if getattr(args, 'amp', False):  # mmengine's TestLoop runs under autocast
            cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    # FiniteLossHook, TorchRNGStateHook, AtomicCheckpointHook, CheckpointFitHook, hook args
    from .engine.safety import add_safety
    add_safety(cfg, mode, args.config)
    if 'runner_type' in cfg:
        from mmengine.registry import RUNNERS
        return RUNNERS.build(cfg)
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg)


def finish_distributed() -> None:
    """Let every rank leave together and close the process group.

    Without it a rank that finished first (e.g. while rank 0 still writes the last checkpoint)
    exited with gloo's threads alive and died with "terminate called without an active
    exception" (SIGABRT), failing the whole torchrun job after a complete run.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
