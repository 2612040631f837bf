"""Export an EVA model to ONNX (torch.onnx dynamo exporter) and optionally check it.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT OUT.onnx [--shape H W]
        [--dynamic-batch] [--dynamic-hw | --static-hw] [--part image|text] [--verify]

Classifier -> logits; EVA-CLIP -> image or text embeddings (``--part``); detector / segmentor
-> backbone + neck features. Inputs are normalised images; mean/std are in the ONNX metadata.
Why torch.onnx and not mmdeploy, and what does not export: docs/deployment.md.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description='Export an EVA model to ONNX (torch.onnx).')
    p.add_argument('config')
    p.add_argument('checkpoint', help="weights (this project's runs or converted releases)")
    p.add_argument('out', help='output .onnx file')
    p.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                   help='input size (default: the backbone img_size)')
    p.add_argument('--dynamic-batch', action='store_true', help='batch axis dynamic')
    hw = p.add_mutually_exclusive_group()
    hw.add_argument('--dynamic-hw', dest='dynamic_hw', action='store_true', default=None,
                    help='H and W dynamic (default for detection/segmentation backbones)')
    hw.add_argument('--static-hw', dest='dynamic_hw', action='store_false',
                    help='H and W fixed to --shape')
    p.add_argument('--part', choices=('image', 'text'),
                   help='EVA-CLIP: the image (default) or text encoder')
    p.add_argument('--opset', type=int, default=18)
    p.add_argument('--verify', action='store_true',
                   help='run the file with onnxruntime and compare with PyTorch (fp32)')
    p.add_argument('--atol', type=float, default=1e-4)
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='override config keys, e.g. model.backbone.img_size=448')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from projects.eva import compat
    from projects.eva.apis.build import build_model
    from projects.eva.deployment import (compare, default_shape, export, model_kind,
                                         verify_shapes)
    compat.apply()
    model = build_model(args.config, args.checkpoint, cfg_options=args.cfg_options)
    kind = model_kind(model, args.part)
    meta = export(model, args.out, kind, args.shape, args.dynamic_batch, args.dynamic_hw,
                  args.opset, args.config)
    print(f'[export] {kind} -> {args.out} ({osp.getsize(args.out) / 2**20:.1f} MiB)')
    for k, v in meta.items():
        print(f'  {k}: {v}')
    if args.verify:
        dyn_hw = meta['dynamic_hw'] == 'True'
        shape = tuple(args.shape) if args.shape else default_shape(model, kind)
        bad = []
        for b, s in verify_shapes(model, kind, shape, args.dynamic_batch, dyn_hw):
            diff = compare(model, args.out, kind, b, s)
            ok = diff <= args.atol
            bad += [] if ok else [(b, s, diff)]
            print(f'  verify batch {b} size {s}: max |ORT - PyTorch| = {diff:.2e} '
                  f'{"ok" if ok else "FAILED"}')
        if bad:
            raise SystemExit(f'[export] onnxruntime differs from PyTorch by more than '
                             f'{args.atol}: {bad}')


if __name__ == '__main__':
    main()
