"""Collect evaluation metrics of finished runs into one markdown table beside EVA-01's
published numbers (the official READMEs, as recorded in the shared reference spec §5).

A run is a work dir written by ``tools/train.py``/``tools/test.py``; its benchmark is read
from the dumped config's file name (or given as ``WORK_DIR:BENCHMARK``), its metric from the
newest run's ``vis_data/scalars.json`` (or ``<timestamp>.json``).
"""
import glob
import json
import os
import os.path as osp
import re
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple


class PaperResult(NamedTuple):
    key: str            # benchmark id (use it in WORK_DIR:BENCHMARK)
    task: str
    benchmark: str
    metric: str         # what the number is
    value: float        # EVA-01's published number, in percent (from the metafiles)
    config: str         # regex over the config file name that identifies a run of it
    metric_keys: Tuple[str, ...]  # logged metric names, first found wins
    source: str


def _paper(model: str, metric: str) -> float:
    """EVA-01's number, read from the model index (configs/<task>/metafile.yml): the one
    source of the paper numbers, also behind the README's results table."""
    from ..apis.model_index import get_model_info
    return get_model_info(model).metric(metric)


CLS = ('accuracy/top1', 'acc/top1', 'top1')
PAPER: List[PaperResult] = [
    PaperResult('in1k-336', 'classification', 'ImageNet-1K val, 336px', 'top-1',
                _paper('eva-g-p14_in21k-pre_in1k-336px', 'Top 1 Accuracy'),
                r'in1k-336px|336px_in1k-val', CLS, 'eva/README.md'),
    PaperResult('in1k-560', 'classification', 'ImageNet-1K val, 560px', 'top-1',
                _paper('eva-g-p14_in21k-pre_in1k-560px', 'Top 1 Accuracy'),
                r'in1k-560px', CLS, 'eva/README.md'),
    PaperResult('in1k-v2', 'classification', 'ImageNet-V2, 336px', 'top-1',
                _paper('eva-g-p14_in1k-336px_test-v2', 'Top 1 Accuracy'),
                r'in1k-v2', CLS, 'eva/README.md'),
    PaperResult('in1k-real', 'classification', 'ImageNet-ReaL, 336px', 'top-1',
                _paper('eva-g-p14_in1k-336px_test-real', 'Top 1 Accuracy'),
                r'in1k-real', CLS + ('real/top1', ), 'eva/README.md'),
    PaperResult('in1k-a', 'classification', 'ImageNet-A, 336px', 'top-1',
                _paper('eva-g-p14_in1k-336px_test-a', 'Top 1 Accuracy'),
                r'in1k-a\b|in1k-a\.', CLS, 'eva/README.md'),
    PaperResult('in1k-r', 'classification', 'ImageNet-R, 336px', 'top-1',
                _paper('eva-g-p14_in1k-336px_test-r', 'Top 1 Accuracy'),
                r'in1k-r\b|in1k-r\.', CLS, 'eva/README.md'),
    PaperResult('in1k-sketch', 'classification', 'ImageNet-Sketch, 336px', 'top-1',
                _paper('eva-g-p14_in1k-336px_test-sketch', 'Top 1 Accuracy'),
                r'in1k-sketch', CLS, 'eva/README.md'),
    PaperResult('objectnet', 'classification', 'ObjectNet, 336px', 'top-1',
                _paper('eva-g-p14_in1k-336px_test-objectnet', 'Top 1 Accuracy'),
                r'objectnet', CLS, 'eva/README.md'),
    PaperResult('k400', 'video', 'Kinetics-400, 16x3x4 views', 'top-1',
                _paper('eva-g-p14_k722-pre_kinetics400-u16', 'Top 1 Accuracy'),
                r'kinetics400', CLS, 'video/README.md'),
    PaperResult('k600', 'video', 'Kinetics-600, 16x3x4 views', 'top-1',
                _paper('eva-g-p14_k722-pre_kinetics600-u16', 'Top 1 Accuracy'),
                r'kinetics600', CLS, 'video/README.md'),
    PaperResult('k700', 'video', 'Kinetics-700, 16x3x4 views', 'top-1',
                _paper('eva-g-p14_k722-pre_kinetics700-u16', 'Top 1 Accuracy'),
                r'kinetics700', CLS, 'video/README.md'),
    PaperResult('coco-det', 'detection', 'COCO val2017, 1536 test, soft-NMS', 'box AP',
                _paper('cascade-mask-rcnn_eva-g-p16_coco-det_test-1536', 'box AP'),
                r'coco-det_test-1536(?!_lvis)', ('coco/bbox_mAP', 'bbox_mAP'), 'det/README.md'),
    PaperResult('coco-seg', 'instance seg.', 'COCO val2017, 1536 test, maskness', 'mask AP',
                _paper('cascade-mask-rcnn_eva-g-p16_coco-seg_test-1536', 'mask AP'),
                r'coco-seg_test-1536', ('coco/segm_mAP', 'segm_mAP'), 'det/README.md'),
    PaperResult('lvis-box', 'detection', 'LVIS v1.0 val, 1536 test', 'box AP',
                _paper('cascade-mask-rcnn_eva-g-p16_lvis_test-1536', 'box AP'),
                r'lvis_test-1536(?!_val-5k)', ('lvis/bbox_AP', 'lvis_fixed_ap/AP', 'bbox_AP'),
                'det/README.md'),
    PaperResult('lvis-mask', 'instance seg.', 'LVIS v1.0 val, 1536 test', 'mask AP',
                _paper('cascade-mask-rcnn_eva-g-p16_lvis_test-1536', 'mask AP'),
                r'lvis_test-1536(?!_val-5k)', ('lvis/segm_AP', 'segm_AP'), 'det/README.md'),
    PaperResult('coco-stuff', 'semantic seg.', 'COCO-Stuff-164K, single scale', 'mIoU',
                _paper('eva-mask2former_vit-g-adapter-p16_coco-stuff164k-896x896', 'mIoU'),
                r'coco-stuff164k-896(?!.*to-ade20k)', ('mIoU', 'seg/mIoU'), 'seg/README.md'),
    PaperResult('ade20k', 'semantic seg.', 'ADE20K, single scale', 'mIoU',
                _paper('eva-mask2former_vit-g-adapter-p16_ade20k-896x896', 'mIoU'),
                r'to-ade20k-896(?!.*ms)', ('mIoU', 'seg/mIoU'), 'seg/README.md'),
    PaperResult('ade20k-ms', 'semantic seg.', 'ADE20K, multi-scale', 'mIoU',
                _paper('eva-mask2former_vit-g-adapter-p16_ade20k-896x896', 'mIoU(ms+flip)'),
                r'to-ade20k.*ms', ('mIoU', 'seg/mIoU'), 'seg/README.md'),
    PaperResult('zs-in1k', 'zero-shot (EVA-CLIP)', 'ImageNet-1K', 'top-1',
                _paper('eva-clip_vit-g-p14_zeroshot-in1k', 'Top 1 Accuracy'),
                r'zeroshot.*(in1k|imagenet)(?!-)', CLS + ('zero_shot/top1', ),
                'clip/README.md'),
    PaperResult('zs-in1k-v2', 'zero-shot (EVA-CLIP)', 'ImageNet-V2', 'top-1',
                _paper('eva-clip_vit-g-p14_zeroshot-in1k-v2', 'Top 1 Accuracy'),
                r'zeroshot.*-v2', CLS, 'clip/README.md'),
    PaperResult('zs-in1k-a', 'zero-shot (EVA-CLIP)', 'ImageNet-A', 'top-1',
                _paper('eva-clip_vit-g-p14_zeroshot-in1k-a', 'Top 1 Accuracy'),
                r'zeroshot.*-a\b', CLS, 'clip/README.md'),
    PaperResult('zs-in1k-r', 'zero-shot (EVA-CLIP)', 'ImageNet-R', 'top-1',
                _paper('eva-clip_vit-g-p14_zeroshot-in1k-r', 'Top 1 Accuracy'),
                r'zeroshot.*-r\b', CLS, 'clip/README.md'),
    PaperResult('zs-sketch', 'zero-shot (EVA-CLIP)', 'ImageNet-Sketch', 'top-1',
                _paper('eva-clip_vit-g-p14_zeroshot-in1k-sketch', 'Top 1 Accuracy'),
                r'zeroshot.*sketch', CLS, 'clip/README.md'),
    PaperResult('zs-objectnet', 'zero-shot (EVA-CLIP)', 'ObjectNet', 'top-1',
                _paper('eva-clip_vit-g-p14_zeroshot-objectnet', 'Top 1 Accuracy'),
                r'zeroshot.*objectnet', CLS, 'clip/README.md'),
]
PAPER_BY_KEY = {p.key: p for p in PAPER}


class Run(NamedTuple):
    work_dir: str
    config: Optional[str]
    metrics: Dict[str, float]


def read_run(work_dir: str) -> Run:
    """Newest run in ``work_dir``: its config name and the last value of every metric."""
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'work dir not found: {work_dir}')
    configs = sorted(glob.glob(osp.join(work_dir, '*.py')))
    stamps = sorted(d for d in os.listdir(work_dir) if re.match(r'^\d{8}_\d{6}$', d)
                    and osp.isdir(osp.join(work_dir, d)))
    metrics: Dict[str, float] = {}
    files = []
    for stamp in stamps:  # oldest first, newer values overwrite
        files += [osp.join(work_dir, stamp, 'vis_data', 'scalars.json'),
                  osp.join(work_dir, stamp, 'vis_data', f'{stamp}.json'),
                  osp.join(work_dir, stamp, f'{stamp}.json')]
    files.append(osp.join(work_dir, 'metrics.json'))  # tools/test.py --out style dumps
    for path in files:
        if not osp.isfile(path):
            continue
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                rec = json.loads(line)
                for k, v in rec.items():
                    if isinstance(v, (int, float)) and k not in ('step', 'epoch', 'iter',
                                                                 'time', 'data_time', 'lr'):
                        metrics[k] = float(v)
    if not metrics:
        raise FileNotFoundError(f'no logged metrics under {work_dir} (expected '
                                '<timestamp>/vis_data/scalars.json from a train/test run)')
    config = osp.basename(configs[-1]) if configs else None
    if config is None and stamps:
        vis_cfg = osp.join(work_dir, stamps[-1], 'vis_data', 'config.py')
        config = osp.basename(work_dir) if osp.isfile(vis_cfg) else None
    return Run(work_dir, config, metrics)


def match_benchmarks(run: Run, forced: Optional[str] = None) -> List[PaperResult]:
    if forced:
        if forced not in PAPER_BY_KEY:
            raise KeyError(f'unknown benchmark {forced!r}; known: {sorted(PAPER_BY_KEY)}')
        return [PAPER_BY_KEY[forced]]
    name = run.config or osp.basename(osp.normpath(run.work_dir))
    return [p for p in PAPER if re.search(p.config, name)]


def metric_value(run: Run, paper: PaperResult) -> Optional[Tuple[str, float]]:
    """The run's value in percent (mmdet/mmaction log fractions, mmpretrain/mmseg percent)."""
    for key in paper.metric_keys:
        hits = [k for k in run.metrics if k == key or k.endswith('/' + key)]
        if hits:
            v = run.metrics[hits[0]]
            return hits[0], v * 100 if v <= 1.0 else v
    return None


def collect(work_dirs: Sequence[str]) -> Tuple[Dict[str, Tuple[float, str]], List[Run]]:
    """``{benchmark key: (value, work dir)}`` (the last run given wins) and unmatched runs."""
    found, unmatched = {}, []
    for spec in work_dirs:
        work_dir, forced = spec, None
        if ':' in spec and not osp.isdir(spec):
            work_dir, forced = spec.rsplit(':', 1)
        run = read_run(work_dir)
        hit = False
        for paper in match_benchmarks(run, forced):
            mv = metric_value(run, paper)
            if mv is not None:
                found[paper.key] = (mv[1], work_dir)
                hit = True
        if not hit:
            unmatched.append(run)
    return found, unmatched


def markdown(found: Dict[str, Tuple[float, str]], unmatched: Sequence[Run] = (),
             only_found: bool = False) -> str:
    lines = ['| task | benchmark | metric | ours | EVA-01 | delta | run |',
             '|---|---|---|---|---|---|---|']
    for p in PAPER:
        if p.key not in found and only_found:
            continue
        ours = found.get(p.key)
        if ours is None:
            lines.append(f'| {p.task} | {p.benchmark} | {p.metric} | - | {p.value:.2f} | - | '
                         f'not run |')
        else:
            lines.append(f'| {p.task} | {p.benchmark} | {p.metric} | {ours[0]:.2f} | '
                         f'{p.value:.2f} | {ours[0] - p.value:+.2f} | '
                         f'`{osp.basename(osp.normpath(ours[1]))}` |')
    text = '\n'.join(lines) + '\n\nEVA-01 numbers: the official READMEs (' + ', '.join(
        sorted({p.source for p in PAPER})) + ').'
    if unmatched:
        text += '\n\nRuns without a paper counterpart (e.g. demos on generated data):\n\n'
        text += '| run | config | metrics |\n|---|---|---|\n'
        for r in unmatched:
            shown = ', '.join(f'{k} {v:.4g}' for k, v in sorted(r.metrics.items())
                              if '/' in k and 'loss' not in k)[:300]
            text += f'| `{osp.basename(osp.normpath(r.work_dir))}` | {r.config} | {shown} |\n'
    return text
