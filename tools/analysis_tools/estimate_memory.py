"""Per-GPU training memory of an MIM pretraining config, computed on the meta device.

    python tools/analysis_tools/estimate_memory.py \
        configs/pretrain/eva-mim_vit-g-p14_128xb32-150e_merged30m.py [--batch 32] [--dtype fp16]
        [--world-size 128] [--strategies zero1 ddp-amp fsdp]

Prints a markdown table (with and without activation checkpointing). Activations are the
bytes saved for backward (measured); framework buffers, the CUDA context and allocator
fragmentation come on top (typically 1-3 GiB).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import projects.eva  # noqa: E402,F401
from mmengine.config import Config  # noqa: E402

from projects.eva.analysis.memory import STRATEGIES, estimate_pretrain_memory  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--batch', type=int, help='per-GPU batch (default: the config\'s)')
    p.add_argument('--dtype', default='fp16', choices=['fp16', 'bf16', 'fp32'])
    p.add_argument('--world-size', type=int, default=128)
    p.add_argument('--strategies', nargs='+', default=['zero1', 'ddp-amp', 'fsdp'],
                   choices=STRATEGIES)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    lines = ['| strategy | ckpt | batch/GPU | params+grads+optim GiB | activations GiB | '
             'teacher GiB | total GiB |', '|---|---|---|---|---|---|---|']
    for strategy in args.strategies:
        for cp in (False, True):
            r = estimate_pretrain_memory(cfg, args.batch, args.dtype, cp, strategy,
                                         args.world_size)
            states = r['params'] + r['grads'] + r['optimizer']
            lines.append(f"| {strategy} (N={args.world_size}) | {'yes' if cp else 'no'} | "
                         f"{args.batch or cfg.train_dataloader.batch_size} | {states:.2f} | "
                         f"{r['activations']:.2f} | {r['teacher_weights']:.2f} | "
                         f"{r['total']:.2f} |")
    print(f"{osp.basename(args.config)}: {r['trainable_params']:,} trainable params, "
          f"teacher {r['teacher_params']:,} (frozen), {args.dtype}")
    print('\n'.join(lines))
    return lines


if __name__ == '__main__':
    main()
