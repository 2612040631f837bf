"""Collect the zero-shot top-1 of the 12 EVA-CLIP benchmarks into EVA's summary table.

    python -m projects.eva.analysis.clip_report work_dirs/eva-clip_vit-g-p14_zeroshot-cls_*
    python -m projects.eva.analysis.clip_report work_dirs/eva02-clip_vit-l-p14-336px_zeroshot-cls_*

Each argument is the work dir of one ``tools/test.py`` run of a ``configs/clip/*zeroshot-cls_*``
config (the model is the name before ``_zeroshot-cls_``, the benchmark its suffix); the newest
``<timestamp>/<timestamp>.json`` there holds its ``accuracy/top1``. Prints per-benchmark top-1
next to that model's released numbers (the model index, ``configs/clip/metafile.yml``), the
ImageNet-family average, the robustness gap Δ and the 12-benchmark average.
"""
import argparse
import glob
import json
import os.path as osp
import sys
from typing import Dict, Optional

from ..clip.zero_shot import PAPER_TOP1, TWELVE, summarize

SUFFIX_TO_BENCHMARK = {
    'in1k': 'imagenet-1k', 'in1k-v2': 'imagenet-v2', 'in1k-a': 'imagenet-a',
    'in1k-r': 'imagenet-r', 'in1k-sketch': 'imagenet-sketch', 'objectnet': 'objectnet',
    'cifar10': 'cifar10', 'cifar100': 'cifar100', 'ucf101': 'ucf101', 'k400': 'kinetics400',
    'k600': 'kinetics600', 'k700': 'kinetics700'}


def model_of(work_dir: str) -> str:
    """``eva02-clip_vit-b-p16`` for ``.../eva02-clip_vit-b-p16_zeroshot-cls_in1k``."""
    return osp.basename(osp.normpath(work_dir)).rsplit('_zeroshot-cls_', 1)[0]


def released_top1(model: str) -> Dict[str, float]:
    """The released zero-shot top-1 of ``model`` per benchmark, from the model index entries
    whose config is ``configs/clip/<model>_zeroshot-cls_<suffix>.py`` (empty when unknown)."""
    from ..apis.model_index import load_index
    out = {}
    for info in load_index().values():
        name = osp.basename(info.config)
        if name.startswith(model + '_zeroshot-cls_'):
            for r in info.results:
                if 'Top 1 Accuracy' in r['Metrics']:
                    out[benchmark_of(name[:-len('.py')])] = float(r['Metrics']['Top 1 Accuracy'])
    return out


def benchmark_of(work_dir: str) -> str:
    suffix = osp.basename(osp.normpath(work_dir)).rsplit('zeroshot-cls_', 1)[-1]
    if suffix not in SUFFIX_TO_BENCHMARK:
        raise ValueError(f'{work_dir}: cannot tell the benchmark from the name; expected a '
                         f'suffix in {sorted(SUFFIX_TO_BENCHMARK)}')
    return SUFFIX_TO_BENCHMARK[suffix]


def read_top1(work_dir: str) -> float:
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    for path in reversed(logs):
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
        hits = [r['accuracy/top1'] for r in records if 'accuracy/top1' in r]
        if hits:
            return float(hits[-1])
    raise FileNotFoundError(f'{work_dir}: no test log with accuracy/top1 (<ts>/<ts>.json)')


def collect(work_dirs) -> Dict[str, float]:
    return {benchmark_of(d): read_top1(d) for d in work_dirs}


def format_table(top1: Dict[str, float], released: Optional[Dict[str, float]] = None,
                 label: str = 'EVA-01') -> str:
    """``released``: the paper column (default: EVA-01-CLIP's numbers)."""
    released = PAPER_TOP1 if released is None else released
    rows = [f'| benchmark | top-1 | {label} |', '|---|---|---|']
    for name in TWELVE:
        ours = f'{top1[name]:.2f}' if name in top1 else '-'
        paper = f'{released[name]:.2f}' if name in released else '-'
        rows.append(f'| {name} | {ours} | {paper} |')
    summary = summarize(top1)
    for key, label in (('imagenet_family_avg', 'avg IN-1K/V2/A/R/Sketch/ObjectNet'),
                       ('robustness_delta', 'Δ = IN-1K − that avg (lower is better)'),
                       ('avg_12', 'avg over the 12')):
        value = summary[key]
        rows.append(f'| {label} | {"-" if value is None else f"{value:.2f}"} | |')
    return '\n'.join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dirs', nargs='+')
    args = parser.parse_args(argv)
    models = sorted({model_of(d) for d in args.work_dirs})
    if len(models) != 1:
        parser.error(f'the work dirs are runs of {len(models)} models {models}: report one '
                     'model at a time')
    print(format_table(collect(args.work_dirs), released_top1(models[0]),
                       f'released ({models[0]})'))


if __name__ == '__main__':
    sys.exit(main())
