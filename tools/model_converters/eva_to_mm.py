"""Convert a released EVA-01 (or timm / mmpretrain) checkpoint for this project's models.

    python tools/model_converters/eva_to_mm.py SRC DST [--patch-size 16]

The format is detected from the keys (see ``projects/eva/converters``); the result holds fp32
weights under ``state_dict`` with backbone keys prefixed ``backbone.``, ready for
``load_from=DST`` or ``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``.
``--patch-size 16`` applies EVA-01's 14 -> 16 patch conversion (bicubic kernel resize, no
rescale; pos-embed 16x16 -> 14x14), used for detection and segmentation.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from projects.eva.converters import convert_checkpoint  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='released checkpoint')
    parser.add_argument('dst', help='output file (.pth)')
    parser.add_argument('--patch-size', type=int, default=None, choices=[14, 16],
                        help='resample the patch embedding to this patch size')
    args = parser.parse_args(argv)
    out = convert_checkpoint(args.src, patch_size=args.patch_size)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    tmp = args.dst + '.tmp'
    torch.save(out, tmp)
    os.replace(tmp, args.dst)  # never leave a truncated file behind
    sd = out['state_dict']
    print(f'{args.src}: {out["meta"]["source_format"]} -> {args.dst} '
          f'({len(sd)} tensors, {sum(v.numel() for v in sd.values()):,} values)')


if __name__ == '__main__':
    main()
