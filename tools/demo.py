"""The demo: EVA's pipeline end to end on CPU in minutes, on data the project generates.

    python tools/demo.py [--work-dir work_dirs/demo] [--stages pretrain,classification,...]
                         [--jobs 2] [--threads 1] [--seed 0]

Each stage (``projects/eva/demo/<stage>.py::run_demo_stage``) writes its data under
``data/demo/`` (again only when the stamp there says it came from another spec or generator
code), trains with its config in ``configs/demo/`` through the same Runner as
``tools/train.py``, and returns rows for ``<work-dir>/results.md``.

``--jobs N`` runs the stages in N processes at once ("lanes", default 2 = the 2 cores this
demo is sized for). A stage that needs another's checkpoint runs after it in the same lane
(classification after pretrain, eva02 after clip); each lane logs to
``<work-dir>/lane_<i>.log``. Every stage trains with one intra-op thread by default: these
tiny models are made of small ops, where a second OpenMP thread mostly waits for a core that
the dataloader workers or the other lane hold (the classification stage alone ran 1.25x
faster with 1 thread than with 2; detection measured ~15x slower with 2 on a loaded machine).

Reproducible on one machine: every config is seeded (``randomness``), data are generated
from fixed seeds, augmentations are seeded per sample or per worker, and torch runs with a
fixed number of intra-op threads (``--threads``), since the summation order of the CPU
kernels depends on it. A stage's result does not depend on its lane (each Runner re-seeds).
``--seed N`` seeds every stage's Runner with N instead of 0 (init and sample order; the data
stay the same): how much a row moves from seed to seed is its spread.
"""
import argparse
import importlib
import json
import os
import os.path as osp
import subprocess
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from projects.eva import compat  # noqa: E402

compat.apply()  # the pinned stack's fixes, before mmengine.runner is imported

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# in table order (eva02 needs clip's checkpoint: its MIM teacher)
STAGES = ('pretrain', 'classification', 'detection', 'segmentation', 'video', 'clip', 'eva02')
STAGE_ORDER = {s: i for i, s in enumerate(STAGES)}
# stages that must run in this order in one lane (the later reads the earlier's checkpoint)
CHAINS = (('pretrain', 'classification'), ('clip', 'eva02'))
# minutes per stage at 1 thread in 2 lanes on 2 quiet cores (measured: docs/demo.md, the
# table's cost column): used only to balance the lanes
COST = dict(pretrain=0.5, classification=2.9, detection=5.2, segmentation=2.1, video=1.4,
            clip=0.7, eva02=3.3)


def available_stages():
    return [s for s in STAGES if osp.isfile(osp.join(ROOT, 'projects', 'eva', 'demo', f'{s}.py'))]


def plan_lanes(stages, jobs):
    """Split ``stages`` into at most ``jobs`` lanes: chains stay together, the longest groups
    go first to the least loaded lane; each lane runs in ``STAGES`` order (chains in order)."""
    groups, seen = [], set()
    for chain in CHAINS:
        group = [s for s in chain if s in stages]
        if group:
            groups.append(group)
            seen.update(group)
    groups += [[s] for s in stages if s not in seen]
    lanes = [[] for _ in range(max(1, min(jobs, len(groups))))]
    load = [0.] * len(lanes)
    for group in sorted(groups, key=lambda g: -sum(COST.get(s, 1.) for s in g)):
        i = load.index(min(load))
        lanes[i] += group
        load[i] += sum(COST.get(s, 1.) for s in group)
    return [sorted(lane, key=STAGE_ORDER.get) for lane in lanes if lane]


def run_stages(stages, work_dir, data_root, threads, rows_file=None, seed=0):
    """The stages one after another in this process; rows and minutes per stage."""
    import torch

    from projects.eva.demo import utils
    utils.SEED = seed
    rows, times = [], {}
    for name in stages:
        module = importlib.import_module(f'projects.eva.demo.{name}')
        torch.set_num_threads(threads)  # a stage may change it
        t = time.time()
        rows += [(name, r) for r in module.run_demo_stage(work_dir, data_root)]
        times[name] = (time.time() - t) / 60
        if rows_file:  # partial results survive a later stage's failure
            with open(rows_file, 'w') as f:
                json.dump(dict(rows=rows, times=times), f)
        else:
            _write_table(rows, work_dir)
    return rows, times


def run_lanes(lanes, args):
    """One subprocess per lane; returns rows, stage minutes and the lanes that failed."""
    procs = []
    for i, lane in enumerate(lanes):
        rows_file = osp.join(args.work_dir, f'lane_{i}.json')
        log = osp.join(args.work_dir, f'lane_{i}.log')
        if osp.exists(rows_file):
            os.remove(rows_file)
        cmd = [sys.executable, osp.abspath(__file__), '--stages', ','.join(lane), '--jobs', '1',
               '--threads', str(args.threads), '--seed', str(args.seed),
               '--work-dir', args.work_dir,
               '--data-root', args.data_root, '--rows-file', rows_file]
        print(f'lane {i}: {", ".join(lane)} (log: {log})', flush=True)
        with open(log, 'w') as out:
            procs.append((i, lane, rows_file, log,
                          subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)))
    rows, times, failed = [], {}, []
    for i, lane, rows_file, log, proc in procs:
        code = proc.wait()
        if osp.exists(rows_file):
            with open(rows_file) as f:
                done = json.load(f)
            rows += [tuple(r) for r in done['rows']]
            times.update(done['times'])
        if code:
            left = [s for s in lane if s not in times]
            failed.append(f'lane {i} exited with {code} in stage {left[0] if left else "?"} '
                          f'(log: {log})')
        print(f'lane {i} done: {", ".join(f"{s} {times[s]:.1f} min" for s in lane if s in times)}'
              + (f'; FAILED: {failed[-1]}' if code else ''), flush=True)
    return rows, times, failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/demo'))
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data/demo'))
    parser.add_argument('--stages', default=','.join(available_stages()),
                        help=f'comma-separated subset of {available_stages()}')
    parser.add_argument('--jobs', type=int, default=2,
                        help='stages run in this many processes at once (default 2)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op threads per process (the results depend on it; '
                             'default 1)')
    parser.add_argument('--seed', type=int, default=0,
                        help="every stage's Runner seed (default 0, the configs' seed)")
    parser.add_argument('--rows-file', help=argparse.SUPPRESS)  # a lane's rows, as JSON
    args = parser.parse_args(argv)
    stages = args.stages.split(',')
    for name in stages:
        if name not in available_stages():
            raise SystemExit(f'unknown demo stage {name!r}; available: {available_stages()}')
    args.work_dir, args.data_root = osp.abspath(args.work_dir), osp.abspath(args.data_root)
    os.makedirs(args.work_dir, exist_ok=True)
    t0 = time.time()
    lanes = plan_lanes(stages, args.jobs)
    if len(lanes) == 1:
        rows, times = run_stages(lanes[0], args.work_dir, args.data_root, args.threads,
                                 args.rows_file, args.seed)
        failed = []
    else:
        rows, times, failed = run_lanes(lanes, args)
    if args.rows_file:
        return 0
    rows.sort(key=lambda stage_row: STAGE_ORDER[stage_row[0]])
    text = _write_table(rows, args.work_dir)
    per_stage = ', '.join(f'{s} {times[s]:.1f}' for s in stages if s in times)
    print(f'\nDemo results (also in {osp.join(args.work_dir, "results.md")}):\n{text}\n'
          f'wall time: {(time.time() - t0) / 60:.1f} min with {len(lanes)} lane(s) '
          f'({per_stage} min)')
    if failed:
        raise SystemExit('demo failed: ' + '; '.join(failed))
    return 0


def _write_table(rows, work_dir):
    table = ['| stage | metric | result | cost |', '|---|---|---|---|']
    table += [f'| {" | ".join(r)} |' for _, r in rows]
    text = '\n'.join(table) + '\n'
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(text)
    return text


if __name__ == '__main__':
    sys.exit(main())
