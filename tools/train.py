"""Train any EVA config (pretrain, classification, detection, segmentation, video, clip).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--tensorboard]
        [--threads N] [--cfg-options k=v ...]
    tools/dist_train.sh CONFIG NUM_GPUS [...]            # torchrun, --launcher pytorch

Same interface as mmpretrain/mmdet/mmseg/mmaction2 ``tools/train.py``; the config's
``default_scope`` selects the OpenMMLab package.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from projects.eva import compat  # noqa: E402

compat.apply()  # the pinned stack's fixes, before mmengine.runner is imported
from mmengine.config import DictAction  # noqa: E402

from projects.eva.cpu import loader_workers, set_threads  # noqa: E402
from projects.eva.runner import build_runner, end_process, finish_distributed  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train an EVA model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from the given checkpoint, or the latest one in the '
                        'work dir when no path is given')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='allow --resume / load_from checkpoints that need full unpickling '
                        '(runs code from the file: only for files you trust; same as '
                        'EVA_TRUST_CHECKPOINTS=1)')
    parser.add_argument('--tensorboard', action='store_true',
                        help='also log scalars to TensorBoard (<work_dir>/<time>/vis_data)')
    parser.add_argument('--no-validate', action='store_true', help='skip validation')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual total batch size')
    parser.add_argument('--no-pin-memory', action='store_true')
    parser.add_argument('--no-persistent-workers', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config settings, key=value')
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
        args.config, work_dir=args.work_dir, resume=args.resume, amp=args.amp,
        cfg_options=args.cfg_options, launcher=args.launcher, no_validate=args.no_validate,
        auto_scale_lr=args.auto_scale_lr, pin_memory=not args.no_pin_memory,
        persistent_workers=not args.no_persistent_workers, tensorboard=args.tensorboard)
    threads = set_threads(args.threads,
                          loader_workers(runner.cfg, 'train_dataloader', 'val_dataloader'))
    runner.logger.info(f'torch intra-op threads: {threads} (--threads)')
    runner.train()
    del runner  # finish_distributed frees the process groups it holds
    if finish_distributed():  # gloo threads a library still holds: see end_process
        end_process(0)


if __name__ == '__main__':
    main()
