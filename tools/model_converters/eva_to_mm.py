"""Convert a released EVA-01 / EVA-02 (or timm / mmpretrain) checkpoint for this project's
models.

    python tools/model_converters/eva_to_mm.py SRC DST [--patch-size 16] [--format NAME]
        [--num-frames T] [--no-ema]

The format is detected from the keys and shapes (see ``projects/eva/converters``); a
checkpoint that fits several formats, or none, is an error that lists the known names, and
``--format NAME`` chooses one. The result holds fp32 weights under ``state_dict`` with
backbone keys prefixed ``backbone.``, ready for ``load_from=DST`` or
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``.
``--patch-size 16`` applies EVA-01's 14 -> 16 patch conversion (bicubic kernel resize, no
rescale; pos-embed 16x16 -> 14x14), used for detection and segmentation. ``--num-frames T``
turns an image checkpoint into the initial weights of a T-frame video model. EMA weights
(``model_ema``, detectron2's ``ema_state``) are taken when the file has them, as timm does;
``--no-ema`` takes the trained weights. SRC may be a ``.safetensors`` file (timm / HF hub).
"""
import argparse
import os
import os.path as osp
import sys
import tempfile

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from projects.eva.converters import convert_checkpoint, format_names  # noqa: E402


def check_paths(src: str, dst: str) -> None:
    """Refuse a destination that would destroy the source or cannot be a file."""
    if osp.isdir(dst):
        raise SystemExit(f'error: output {dst} is an existing folder; give a file name, e.g. '
                         f'{osp.join(dst, osp.splitext(osp.basename(src))[0] + "_mm.pth")}')
    same = osp.realpath(src) == osp.realpath(dst) or (
        osp.exists(dst) and osp.exists(src) and osp.samefile(src, dst))
    if same:
        raise SystemExit(f'error: output {dst} is the input checkpoint; writing it would '
                         'replace the original by the converted weights')


def save_atomic(obj, dst: str) -> None:
    """Write through a temporary file in the destination folder, removed on any failure:
    never a truncated ``dst``, never a stray ``.tmp``; the file gets the user's umask."""
    folder = osp.dirname(osp.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=osp.basename(dst) + '.', suffix='.tmp', dir=folder)
    os.close(fd)
    try:
        # mkstemp creates 0600; the output gets the mode any new file of the user gets
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        torch.save(obj, tmp)
        os.replace(tmp, dst)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='released checkpoint')
    parser.add_argument('dst', help='output file (.pth)')
    parser.add_argument('--patch-size', type=int, default=None, choices=[14, 16],
                        help='resample the patch embedding to this patch size')
    parser.add_argument('--format', default=None, metavar='NAME',
                        help='skip detection and convert as this format (every tensor must '
                             'still map); an unknown name lists the known ones')
    parser.add_argument('--fed-loss-class-freq', default=None, metavar='JSON',
                        help='LVIS detector: check the checkpoint\'s fed_loss_cls_weights '
                             'against image_count ** 0.5 from this cat-info / LVIS train json')
    parser.add_argument('--num-frames', type=int, default=None, metavar='T',
                        help='initial weights of a T-frame video model from an image '
                             'checkpoint (position table tiled over the frames)')
    parser.add_argument('--no-ema', action='store_true',
                        help='take the trained weights of a file that also holds EMA ones')
    args = parser.parse_args(argv)
    if args.format is not None and args.format not in format_names(aliases=True):
        parser.error(f'unknown --format {args.format!r}; known formats: {format_names()}')
    check_paths(args.src, args.dst)
    options = dict(num_frames=args.num_frames, ema=not args.no_ema)
    if args.fed_loss_class_freq:  # read here: the converters read no annotation files
        from projects.eva.detection.losses import load_class_image_counts
        options['fed_loss_class_counts'] = load_class_image_counts(
            args.fed_loss_class_freq).tolist()
    try:
        out = convert_checkpoint(args.src, patch_size=args.patch_size, format=args.format,
                                 **options)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        msg = str(e.args[0] if isinstance(e, KeyError) and e.args else e)
        raise SystemExit(f'error: {msg if args.src in msg else args.src + ": " + msg}') from e
    save_atomic(out, args.dst)
    sd = out['state_dict']
    for key, reason in out['meta'].get('dropped', {}).items():
        print(f'dropped {key}: {reason}')
    weights = out['meta'].get('weights')
    print(f'{args.src}: {out["meta"]["source_format"]}'
          f'{f" ({weights} weights)" if weights else ""} -> {args.dst} '
          f'({len(sd)} tensors, {sum(v.numel() for v in sd.values()):,} values)')


if __name__ == '__main__':
    main()
