"""Markdown table of the evaluation metrics of finished runs beside EVA-01's numbers.

    python tools/analysis_tools/results_table.py WORK_DIR [WORK_DIR[:BENCHMARK] ...]
        [--only-run] [--out results.md] [--list]

Each work dir is matched to a benchmark by its dumped config's file name (e.g.
``eva-g-p14_336px_in1k-v2.py`` -> ImageNet-V2); append ``:BENCHMARK`` to force one
(``--list`` shows the ids). Delta = ours - EVA-01, in points. The README's results section
is this tool's output.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from projects.eva.analysis.results import PAPER, collect, markdown  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description='results table vs EVA-01')
    p.add_argument('work_dirs', nargs='*')
    p.add_argument('--only-run', action='store_true', help='hide benchmarks without a run')
    p.add_argument('--out', help='also write the markdown here')
    p.add_argument('--list', action='store_true', help='list benchmark ids and exit')
    args = p.parse_args(argv)
    if args.list:
        text = '\n'.join(f'{r.key:14s} {r.task}: {r.benchmark} ({r.metric} {r.value})'
                         for r in PAPER)
    else:
        found, unmatched = collect(args.work_dirs)
        text = markdown(found, unmatched, args.only_run)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    return text


if __name__ == '__main__':
    main()
