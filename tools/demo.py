"""The demo: EVA's pipeline end to end on CPU in minutes, on data the project generates.

    python tools/demo.py [--work-dir work_dirs/demo] [--stages pretrain,classification,...]

Each stage (``projects/eva/demo/<stage>.py::run_demo_stage``) writes its data under
``data/demo/`` (again only when the stamp there says it came from another spec or generator
code), trains with its config in ``configs/demo/`` through the same Runner as
``tools/train.py``, and returns rows for ``<work-dir>/results.md``.

Reproducible on one machine: every config is seeded (``randomness``), data are generated
from fixed seeds, augmentations are seeded per sample or per worker, and torch runs with a
fixed number of intra-op threads (``--threads``, default 2; the detection and segmentation
stages use 1), since the summation order of the CPU kernels depends on it.
"""
import argparse
import importlib
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import projects.eva  # noqa: E402,F401

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# in the order they run (eva02 needs clip's checkpoint: its MIM teacher)
STAGES = ('pretrain', 'classification', 'detection', 'segmentation', 'video', 'clip', 'eva02')


def available_stages():
    return [s for s in STAGES if osp.isfile(osp.join(ROOT, 'projects', 'eva', 'demo', f'{s}.py'))]


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/demo'))
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data/demo'))
    parser.add_argument('--stages', default=','.join(available_stages()),
                        help=f'comma-separated subset of {available_stages()}')
    parser.add_argument('--threads', type=int, default=2,
                        help='torch intra-op threads (the results depend on it; default 2)')
    args = parser.parse_args()
    stages = args.stages.split(',')
    for name in stages:
        if name not in available_stages():
            raise SystemExit(f'unknown demo stage {name!r}; available: {available_stages()}')
    import time

    import torch
    os.makedirs(args.work_dir, exist_ok=True)
    rows, times, t0 = [], [], time.time()
    for name in stages:
        module = importlib.import_module(f'projects.eva.demo.{name}')
        torch.set_num_threads(args.threads)  # a stage may change it (detection: 1)
        t = time.time()
        rows += module.run_demo_stage(args.work_dir, args.data_root)
        times.append(f'{name} {(time.time() - t) / 60:.1f}')
        _write_table(rows, args.work_dir)  # keep partial results if a later stage fails
    text = _write_table(rows, args.work_dir)
    print(f'\nDemo results (also in {osp.join(args.work_dir, "results.md")}):\n{text}\n'
          f'wall time: {(time.time() - t0) / 60:.1f} min ({", ".join(times)} min)')


def _write_table(rows, work_dir):
    table = ['| stage | metric | result | cost |', '|---|---|---|---|']
    table += [f'| {" | ".join(r)} |' for r in rows]
    text = '\n'.join(table) + '\n'
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(text)
    return text


if __name__ == '__main__':
    main()
