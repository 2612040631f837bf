"""Config -> Runner, shared by ``tools/train.py`` and ``tools/test.py``."""
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config


AMP_WRAPPERS = ('AmpOptimWrapper', 'mmengine.AmpOptimWrapper')


def runner_config(config: str, cfg_options: Optional[dict] = None, launcher: str = 'none',
                work_dir: Optional[str] = None, amp: bool = False) -> Config:
    """Read ``config`` and apply what every tool applies: overrides, key check, work dir,
    the CPU/gloo fallbacks and ``--amp``."""
    from .engine.config_check import check_cfg_options, check_top_level_keys, check_values
    cfg = Config.fromfile(config)
    if cfg_options:
        check_cfg_options(cfg, cfg_options, config, amp)  # every key must be one something reads
        cfg.merge_from_dict(cfg_options)
    check_top_level_keys(cfg, config)
    check_values(cfg, config)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    if not torch.cuda.is_available() and cfg.get('env_cfg', {}).get('dist_cfg'):
        cfg.env_cfg.dist_cfg.backend = 'gloo'  # CPU runs (tests, demo) use gloo
        if cfg.launcher != 'none' and cfg.get('model_wrapper_cfg') is None \
                and 'runner_type' not in cfg:
            # mmengine's default DDP wrapper passes device_ids=[LOCAL_RANK], GPU only
            cfg.model_wrapper_cfg = dict(
                type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                find_unused_parameters=cfg.get('find_unused_parameters', False))
    if amp:
        wrapper = cfg.optim_wrapper
        if wrapper.get('type', 'OptimWrapper') not in AMP_WRAPPERS:
            if 'type' in wrapper and wrapper['type'] not in ('OptimWrapper', 'mmengine.OptimWrapper'):
                raise ValueError(f'--amp cannot convert optim_wrapper type {wrapper["type"]}')
            wrapper.type = 'AmpOptimWrapper'
            wrapper.setdefault('loss_scale', 'dynamic')
    wrapper = cfg.get('optim_wrapper')
    if (not torch.cuda.is_available() and isinstance(wrapper, dict)
            and wrapper.get('type') in AMP_WRAPPERS):
        from .engine import amp as _amp  # noqa: F401  (mmengine's AmpOptimWrapper asserts a GPU)
        wrapper.type = 'AnyDeviceAmpOptimWrapper'
    return cfg


def build_runner(config: str, work_dir: Optional[str] = None, resume: Optional[str] = None,
                 amp: bool = False, cfg_options: Optional[dict] = None, *,
                 mode: str = 'train', launcher: str = 'none', no_validate: bool = False,
                 auto_scale_lr: bool = False, pin_memory: bool = True,
                 persistent_workers: bool = True, checkpoint: Optional[str] = None,
                 tta: bool = False, out: Optional[str] = None, tensorboard: bool = False):
    """The Runner ``tools/train.py`` (``mode='train'``) or ``tools/test.py`` (``'test'``)
    builds; each keyword is the tool's flag of the same name.

    ``resume``: ``'auto'`` (latest checkpoint in the work dir), a checkpoint path, or None.
    ``checkpoint``: the weights ``mode='test'`` evaluates. ``pin_memory=False`` /
    ``persistent_workers=False`` switch those off in every dataloader.
    """
    if mode not in ('train', 'test'):
        raise ValueError(f"build_runner: mode must be 'train' or 'test', got {mode!r}")
    from . import compat
    compat.apply()  # the pinned stack's fixes (the one loader for load_from / resume among them)
    cfg = runner_config(config, cfg_options, launcher, work_dir, amp)
    if tensorboard:
        from .tensorboard import enable_tensorboard
        enable_tensorboard(cfg)
    if mode == 'train':
        if resume == 'auto':  # newest readable checkpoint, past a truncated one
            from .engine.safety import resume_from
            cfg.resume, cfg.load_from = True, resume_from(cfg.work_dir)
        elif resume is not None:
            cfg.resume, cfg.load_from = True, resume
        if no_validate:
            cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
        if auto_scale_lr:
            cfg.setdefault('auto_scale_lr', {})['enable'] = True
        for enabled, key in ((pin_memory, 'pin_memory'),
                             (persistent_workers, 'persistent_workers')):
            if not enabled:
                for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
                    if cfg.get(loader):
                        cfg[loader][key] = False
    else:
        cfg.load_from = checkpoint
        if tta:
            if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
                raise KeyError(f'{config} defines no tta_model/tta_pipeline for --tta')
            cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
            cfg.tta_model.module = cfg.model
            if cfg.model.get('data_preprocessor') is not None:
                # mmengine's BaseTTAModel gives the module its *own* data_preprocessor, which
                # the Runner fills from the config's top-level variable: keep the module's
                cfg.tta_model.setdefault('data_preprocessor', cfg.model.data_preprocessor)
            cfg.model = cfg.tta_model
        if out:
            evaluator = cfg.test_evaluator
            evaluator = list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]
            evaluator.append(dict(type='mmengine.DumpResults', out_file_path=out))
            cfg.test_evaluator = evaluator
        if amp:  # mmengine's TestLoop runs under autocast
            cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    # FiniteLossHook, TorchRNGStateHook, AtomicCheckpointHook, CheckpointFitHook, hook args
    from .engine.safety import add_safety
    add_safety(cfg, mode, config)
    if 'runner_type' in cfg:
        from mmengine.registry import RUNNERS
        return RUNNERS.build(cfg)
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg)


def communication_threads() -> list:
    """Names of this process's gloo threads alive now (Linux; ``[]`` elsewhere)."""
    import glob
    names = []
    for path in glob.glob('/proc/self/task/*/comm'):
        try:
            with open(path) as f:
                name = f.read().strip()
        except OSError:  # the thread ended meanwhile
            continue
        if 'gloo' in name:
            names.append(name)
    return sorted(names)


def finish_distributed() -> list:
    """Let every rank leave together, close the process groups and end their threads.

    Call it after dropping the Runner (``del runner``); returns the gloo threads still alive.
    ``destroy_process_group`` only unregisters the groups: the Runner's model wrapper still
    holds them, so gloo's worker and TCP-loop threads (``pt_gloo_runloop``,
    ``gloo_tcp_loop``) lived on into interpreter shutdown and C++ static destruction, where
    a native thread still running ends the process in std::terminate ("terminate called
    without an active exception", SIGABRT after a complete run: the end-of-run abort seen
    in CI). Collecting the Runner's reference cycles frees DDP's groups here, on the main
    thread, whose destructors join those threads. DeepSpeed and DTensor (FSDP2) keep
    groups in their own caches; for them :func:`end_process` skips the teardown.
    """
    import gc

    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return []
    dist.barrier()
    gc.collect()  # the Runner's cycles: model wrapper -> process groups
    dist.destroy_process_group()
    gc.collect()
    left = communication_threads()
    from mmengine.logging import print_log
    print_log(f'distributed: process groups closed, {len(left)} gloo threads left'
              + (f' {left}: ending the process without interpreter teardown' if left else ''),
              logger='current')
    return left


def end_process(code: int = 0) -> None:
    """Flush logs and stdio, then ``os._exit``: no interpreter teardown or C++ static
    destructors while native communication threads are still running."""
    import logging
    import os
    import sys
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
