"""Per-GPU memory of an EVA config (MIM, classification, detection, segmentation, video),
computed on the meta device: no weights are read and nothing is allocated.

    python tools/analysis_tools/estimate_memory.py CONFIG [CONFIG ...] [--gpus N] \
        [--strategy ddp|zero1|fsdp] [--mode train|test] [--batch B] [--dtype fp16|bf16|fp32]
        [--with-cp yes|no] [--shape H W | T H W] [--out table.md]

Parameters and trainable parameters are counted on the built model; gradients and Adam(W)
states follow the strategy's accounting (``ddp``: torch AMP, fp32 weights + grads + two fp32
moments; ``zero1``: DeepSpeed fp16 weights/grads, fp32 master + moments sharded over the
GPUs; ``fsdp``: everything sharded). Activations are *measured* through the real model's
forward on meta: the bytes autograd saves for backward (training) or the peak of the live
tensors of a no-grad forward (testing). The smallest GPU tier (24 / 40 / 80 GiB) adds
2 GiB for the CUDA context, workspaces and fragmentation. Prints one markdown row per
config (``--strategies``/``--world-size`` of the former MIM-only tool still work).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from projects.eva import compat  # noqa: E402

compat.apply()  # the pinned stack's fixes, before mmengine.runner is imported
from mmengine.config import Config, DictAction  # noqa: E402

from projects.eva.analysis.memory import (OVERHEAD_GIB, STRATEGIES,  # noqa: E402
                                          estimate_config_memory)

HEADER = ('| config | task | mode | input | batch/GPU | dtype | ckpt | strategy (GPUs) | '
          'params (trainable) | weights GiB | grads GiB | optimizer GiB | activations GiB '
          '(per sample) | measured part | total GiB | smallest GPU |')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('configs', nargs='+')
    p.add_argument('--gpus', '--world-size', type=int, default=1, dest='gpus')
    p.add_argument('--strategy', default='ddp', choices=['ddp', 'zero1', 'zero2', 'fsdp'])
    p.add_argument('--strategies', nargs='+', choices=STRATEGIES + ('ddp', ),
                   help='several strategies (one row each)')
    p.add_argument('--mode', default='train', choices=['train', 'test'])
    p.add_argument('--batch', type=int, help='per-GPU batch (default: the config\'s)')
    p.add_argument('--dtype', choices=['fp16', 'bf16', 'fp32'],
                   help='default: the config\'s AMP dtype, else fp32')
    p.add_argument('--with-cp', choices=['yes', 'no', 'both'],
                   help='override activation checkpointing (default: the config\'s)')
    p.add_argument('--shape', type=int, nargs='+', help='H W or T H W (default: the config\'s)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    p.add_argument('--out', help='also write the table to this file')
    return p.parse_args(argv)


def row(name, r) -> str:
    shape = 'x'.join(str(s) for s in r['shape'])
    tier = f"{r['tier']} GB" if r['tier'] else f"> 80 GB ({r['total'] + OVERHEAD_GIB:.0f})"
    return (f"| {name} | {r['task']} | {r['mode']} | {shape} | {r['batch']} | {r['dtype']} | "
            f"{'yes' if r['with_cp'] else 'no'} | {r['strategy']} ({r['gpus']}) | "
            f"{r['params'] / 1e6:,.0f}M ({r['trainable'] / 1e6:,.0f}M) | {r['weights']:.2f} | "
            f"{r['grads']:.2f} | {r['optimizer']:.2f} | {r['activations']:.2f} "
            f"({r['per_sample']:.3f}) | {r['part']} | **{r['total']:.2f}** | {tier} |")


def main(argv=None):
    args = parse_args(argv)
    strategies = args.strategies or [args.strategy]
    cps = {None: (None, ), 'yes': (True, ), 'no': (False, ), 'both': (False, True)}[args.with_cp]
    lines = [HEADER, '|' + '---|' * HEADER.count(' | ') + '---|']
    results = []
    for path in args.configs:
        cfg = Config.fromfile(path)
        cfg.merge_from_dict(args.cfg_options)
        for strategy in strategies:
            for cp in cps:
                r = estimate_config_memory(cfg, args.mode, args.batch, args.dtype, cp,
                                           strategy, args.gpus, args.shape)
                results.append(r)
                lines.append(row(osp.splitext(osp.basename(path))[0], r))
                print(lines[-1], file=sys.stderr, flush=True)
    text = '\n'.join(lines)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    return results


if __name__ == '__main__':
    main()
