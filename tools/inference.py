"""Predict on images, folders or videos with any EVA config and checkpoint.

    python tools/inference.py CONFIG CHECKPOINT INPUTS... [--out-dir DIR] [--device cpu|cuda]
        [--batch-size N] [--topk K] [--score-thr T] [--classes a,b,c | --classes-file F]
        [--prompts-file F] [--no-vis] [--video-format gif|mp4] [--fail-fast] [--threads N]
        [--cfg-options k=v ...]
    python tools/inference.py MODEL_NAME INPUTS... [--weights PATH_OR_URL] [options above]

The task comes from the config (classification, EVA-CLIP zero-shot, detection / instance
segmentation, semantic segmentation, video) and runs through the upstream inferencer
(mmpretrain ImageClassificationInferencer, mmdet DetInferencer, mmseg MMSegInferencer,
mmaction2 ActionRecogInferencer). Per input it writes ``DIR/preds/<name>.json`` and
``DIR/vis/<name>.png`` (video: ``.gif`` or ``.mp4``); the fields are listed in docs/inference.md.
Zero-shot takes its label set from --classes / --classes-file (one name per line) and its
prompts from --prompts-file (one template with ``{}`` per line; default: the config's).
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from projects.eva import compat  # noqa: E402

compat.apply()  # the pinned stack's fixes, before mmengine.runner is imported
from mmengine.config import DictAction  # noqa: E402

from projects.eva.cpu import set_threads  # noqa: E402
from projects.eva.apis.inference import (build_inferencer, read_lines,  # noqa: E402
                                         run_inference, summary)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='a config file, or a model-index name (projects.eva.'
                   'list_models()): then no CHECKPOINT, the released weights are downloaded '
                   'and converted once (cache: $EVA_CACHE_DIR or torch hub\'s checkpoints/eva)')
    p.add_argument('checkpoint', help="checkpoint file; 'none' for the config's own weights "
                   '(random unless its init_cfg loads some)')
    p.add_argument('inputs', nargs='*', help='image or video files, or folders of them')
    p.add_argument('--weights', metavar='PATH_OR_URL', default=None,
                   help='with a model name: the official release file as a local path or a '
                   'mirror URL (offline), instead of the metafile\'s URL')
    p.add_argument('--out-dir', default='work_dirs/inference')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 (default: cuda if '
                   'available)')
    p.add_argument('--batch-size', type=int, default=1)
    p.add_argument('--topk', type=int, default=5, help='classes listed per image / video')
    p.add_argument('--score-thr', type=float, default=0.3,
                   help='detection: lowest score drawn (the JSON keeps every instance)')
    p.add_argument('--opacity', type=float, default=0.5, help='segmentation overlay opacity')
    names = p.add_mutually_exclusive_group()
    names.add_argument('--classes', help='comma-separated class names (zero-shot label set, '
                       'or names for a checkpoint without them)')
    names.add_argument('--classes-file', help='class names, one per line')
    p.add_argument('--prompts-file', help='zero-shot prompt templates, one per line, with {}')
    p.add_argument('--no-vis', action='store_true', help='write only the JSON files')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='allow a checkpoint that needs full unpickling (runs code from the '
                   'file: only for files you trust; same as EVA_TRUST_CHECKPOINTS=1)')
    p.add_argument('--fail-fast', action='store_true',
                   help='stop at the first input that cannot be read or predicted (default: '
                   'go on, list the failures at the end and exit with status 1)')
    p.add_argument('--video-format', choices=['gif', 'mp4'], default='gif',
                   help='video pictures as an animated GIF or an .mp4 (as mmaction2\'s demo)')
    p.add_argument('--threads', type=int, default=None,
                   help='torch intra-op threads (default on CPU: the cores minus one, '
                   'which reads the images, at least 1; on GPU: torch\'s)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return p.parse_args(argv)


def resolve_model_name(args) -> None:
    """``NAME INPUTS...``: the name's config and its released weights (downloaded and
    converted once); ``CONFIG CHECKPOINT INPUTS...`` as before."""
    if osp.isfile(args.config) or args.config.endswith('.py'):
        if not args.inputs:
            raise SystemExit('error: no inputs: CONFIG CHECKPOINT INPUTS...')
        if args.weights:
            raise SystemExit('error: --weights goes with a model name, not a config file')
        return
    from projects.eva.apis.hub import pretrained_checkpoint
    from projects.eva.apis.model_index import get_model_info
    try:
        info = get_model_info(args.config)
    except KeyError as e:
        raise SystemExit(f'error: {args.config} is neither a config file nor a model name: '
                         f'{e.args[0]}') from None
    args.inputs = [args.checkpoint] + args.inputs  # NAME takes no checkpoint argument
    args.config = info.config
    try:
        args.checkpoint = pretrained_checkpoint(info, args.weights or True)
    except (OSError, RuntimeError, ValueError) as e:
        raise SystemExit(f'error: {e}') from e


def main(argv=None):
    args = parse_args(argv)
    resolve_model_name(args)
    if args.trust_checkpoint:  # the user's explicit opt-in (projects/eva/loader.py)
        os.environ['EVA_TRUST_CHECKPOINTS'] = '1'
    classes = None
    if args.classes:
        classes = [c.strip() for c in args.classes.split(',') if c.strip()]
    elif args.classes_file:
        classes = read_lines(args.classes_file)
    templates = read_lines(args.prompts_file) if args.prompts_file else None
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    set_threads(args.threads, 1, args.device)  # the inferencer reads images in-process
    extra = dict(config=args.config, checkpoint=checkpoint)
    inferencer = build_inferencer(args.config, checkpoint, device=args.device,
                                  classes=classes, templates=templates,
                                  cfg_options=args.cfg_options)
    try:
        records = run_inference(
            inferencer, args.inputs, out_dir=args.out_dir, batch_size=args.batch_size,
            topk=args.topk, score_thr=args.score_thr, opacity=args.opacity,
            visualize=not args.no_vis, video_format=args.video_format,
            extra=extra, fail_fast=args.fail_fast)
    except RuntimeError as e:  # --fail-fast: the first failure, naming its file
        raise SystemExit(f'error: {e}') from e
    result = summary(records)
    print(f'{result["done"]} {inferencer.eva_task} predictions written to '
          f'{osp.join(args.out_dir, "preds")}' +
          ('' if args.no_vis else f' (pictures in {osp.join(args.out_dir, "vis")})'))
    if result['failed']:
        print(f'{len(result["failed"])} of {len(records)} inputs failed '
              f'(also in {osp.join(args.out_dir, "summary.json")}):', file=sys.stderr)
        for r in result['failed']:
            print(f'  {r["error"]}', file=sys.stderr)  # names the file and the cause
        raise SystemExit(1)
    return records


if __name__ == '__main__':
    main()
