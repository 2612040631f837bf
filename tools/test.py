"""Evaluate a checkpoint with any EVA config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--tta] [--out FILE] [--tensorboard]
        [--threads N] [--cfg-options ...]
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from projects.eva import compat  # noqa: E402

compat.apply()  # the pinned stack's fixes, before mmengine.runner is imported
from projects.eva.cpu import loader_workers, set_threads  # noqa: E402
from projects.eva.runner import build_runner, end_process, finish_distributed  # noqa: E402


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Test (and evaluate) an EVA model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and results')
    parser.add_argument('--out', help='dump predictions to a pickle file')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    parser.add_argument('--tensorboard', action='store_true',
                        help='also log scalars to TensorBoard (<work_dir>/<time>/vis_data)')
    parser.add_argument('--amp', action='store_true')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='allow a checkpoint that needs full unpickling (runs code from '
                        'the file: only for files you trust; same as EVA_TRUST_CHECKPOINTS=1)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    parser.add_argument('--threads', type=int, default=None,
                        help='torch intra-op threads (default on CPU: the cores left after '
                        'the dataloader workers, at least 1; on GPU: torch\'s)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.trust_checkpoint:  # the user's explicit opt-in (projects/eva/loader.py)
        os.environ['EVA_TRUST_CHECKPOINTS'] = '1'
    runner = build_runner(
        args.config, work_dir=args.work_dir, amp=args.amp, cfg_options=args.cfg_options,
        mode='test', launcher=args.launcher, checkpoint=args.checkpoint, tta=args.tta,
        out=args.out, tensorboard=args.tensorboard)
    threads = set_threads(args.threads, loader_workers(runner.cfg, 'test_dataloader'))
    runner.logger.info(f'torch intra-op threads: {threads} (--threads)')
    runner.test()
    del runner  # finish_distributed frees the process groups it holds
    if finish_distributed():  # gloo threads a library still holds: see end_process
        end_process(0)


if __name__ == '__main__':
    main()
