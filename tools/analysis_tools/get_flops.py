"""FLOPs and parameters of any EVA config (pretrain, classification, detection,
segmentation, video, clip).

    python tools/analysis_tools/get_flops.py CONFIG [--shape 224 224 | --shape 16 224 224]
        [--part backbone|neck|model] [--backward] [--counter torch|mmengine] [--device meta|cpu]

FLOPs are 2 per multiply-add (so "GFLOPs", not fvcore's "GMACs"); the torch counter runs on
the meta device (no memory, giant models in seconds) and counts attention and, with
``--backward``, the backward pass. ``--counter mmengine`` uses mmengine's fvcore-style jit
counter on real CPU tensors (adds LayerNorm FLOPs). ``--part model`` traces
``model(inputs, mode='tensor')`` (classifiers, MIM); detectors/segmentors are counted by
backbone (+ neck).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from projects.eva import compat  # noqa: E402

compat.apply()  # the pinned stack's fixes, before mmengine.runner is imported
from mmengine.config import DictAction  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='count FLOPs of a config')
    p.add_argument('config')
    p.add_argument('--shape', type=int, nargs='+',
                   help='H W, or T H W for video (default: the backbone img_size)')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--part', default='backbone', choices=['backbone', 'neck', 'model'])
    p.add_argument('--backward', action='store_true', help='count forward + backward')
    p.add_argument('--counter', default='torch', choices=['torch', 'mmengine'])
    p.add_argument('--device', default='meta', choices=['meta', 'cpu'])
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return p.parse_args(argv)


def input_shape(cfg, shape):
    bb = cfg.model.get('backbone', cfg.model)
    if shape:
        return tuple(shape)
    size = bb.get('img_size', 224)
    size = (size, size) if isinstance(size, int) else tuple(size)
    frames = bb.get('num_frames')
    return ((frames, ) if frames else ()) + size


def main(argv=None):
    args = parse_args(argv)
    from projects.eva.apis.build import build_model, load_config
    cfg = load_config(args.config, args.cfg_options)
    if args.counter == 'mmengine' and args.device == 'meta':
        args.device = 'cpu'  # jit tracing needs real tensors
    shape = input_shape(cfg, args.shape)
    model = build_model(cfg, device=args.device)  # no weight file is read
    # (B, C, H, W), or (B, C, T, H, W) for video
    x = torch.randn(args.batch, 3, *shape, device=args.device)
    model.train(args.backward)
    if args.part == 'backbone':
        fn, mod = model.backbone, model.backbone
    elif args.part == 'neck':
        def fn(t):
            return model.neck(model.backbone(t))
        mod = model
    else:
        def fn(t):
            return model(t, mode='tensor')
        mod = model
    from projects.eva.analysis.flops import count_flops, count_flops_mmengine
    if args.counter == 'torch':
        ctx = torch.no_grad() if not args.backward else torch.enable_grad()
        try:
            with ctx:
                total, by_op = count_flops(mod, (x, ), args.backward, forward_fn=fn)
        except (RuntimeError, NotImplementedError) as e:
            if args.device != 'meta':
                raise
            raise RuntimeError(f'the forward does not run on the meta device ({e}); '
                               'count on real tensors with --device cpu') from e
    else:
        if args.backward:
            raise ValueError('--counter mmengine counts the forward only')
        wrapper = _Fn(fn) if args.part != 'backbone' else model.backbone
        with torch.no_grad():
            total, by_op = count_flops_mmengine(wrapper, (x, ))
    params = sum(p.numel() for p in (model.backbone if args.part == 'backbone' else model)
                 .parameters())
    print(f'config: {args.config}\npart: {args.part}  input: {(args.batch, 3) + shape}  '
          f'pass: {"forward+backward" if args.backward else "forward"}  counter: {args.counter}')
    print(f'FLOPs: {total / 1e9:.2f} G  (2 per multiply-add)\nparams: {params / 1e6:.2f} M '
          f'({params:,})')
    for op, v in sorted(by_op.items(), key=lambda kv: -kv[1]):
        print(f'  {op}: {v / 1e9:.3f} G')
    return total, params


class _Fn(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


if __name__ == '__main__':
    main()
