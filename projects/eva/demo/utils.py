"""Helpers shared by the demo stages (``projects/eva/demo/<stage>.py``, run by tools/demo.py)."""
import hashlib
import inspect
import json
import os
import os.path as osp
import shutil
from typing import Callable, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def config_path(name: str) -> str:
    """Absolute path of ``configs/<name>``."""
    return osp.join(ROOT, 'configs', name)


STAMP = 'generated_with.json'


def data_stamp(spec: dict, generators: Sequence) -> dict:
    """What a demo data folder was generated from: the stage's ``spec`` (sizes, counts,
    seeds), a hash of the source of every generator module that drew it, and the versions of
    the libraries whose output could change the files (image encoders, sklearn's digits)."""
    from importlib.metadata import version
    code = hashlib.sha256()
    for module in generators:
        with open(inspect.getsourcefile(module), 'rb') as f:
            code.update(f.read())
    stamp = dict(spec=spec, generator_sha256=code.hexdigest(),
                 versions={p: version(p) for p in ('numpy', 'pillow', 'scikit-learn')})
    return json.loads(json.dumps(stamp))  # tuples -> lists, as read back from the file


def ensure_data(root: str, spec: dict, make: Callable[[], object], generators: Sequence,
                log: Callable[[str], None] = print) -> bool:
    """Generate the demo data folder ``root`` with ``make()`` unless its stamp says it was
    generated from this very ``spec`` and generator code; returns True if it (re)generated.

    A folder without a stamp, with another spec, or drawn by an older generator is removed
    and drawn again (``root`` belongs to the demo): stale files left by older code changed
    results before. The stamp is written last, so an interrupted generation is redone.
    ``tools/demo.py --jobs`` runs stages that share a folder (pretrain / eva02) in parallel
    lanes: check and generation hold an exclusive lock on ``<root>.lock``."""
    import fcntl
    os.makedirs(osp.dirname(osp.abspath(root)), exist_ok=True)
    with open(osp.abspath(root) + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _ensure_data(root, spec, make, generators, log)


def _ensure_data(root, spec, make, generators, log) -> bool:
    want = data_stamp(spec, generators)
    path = osp.join(root, STAMP)
    if osp.isfile(path):
        try:
            with open(path) as f:
                if json.load(f) == want:
                    return False
        except (OSError, ValueError):
            pass  # unreadable stamp: regenerate
        log(f'demo data {root}: generated from another spec or generator; drawing it again')
    elif osp.exists(root):
        log(f'demo data {root}: no {STAMP} (older demo); drawing it again')
    if osp.exists(root):
        shutil.rmtree(root)
    make()
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(want, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
    return True


def latest_checkpoint(work_dir: str, kind: str = 'epoch'):
    """Newest ``<kind>_N.pth`` in ``work_dir`` (None if there is none)."""
    import glob
    ckpts = [(int(osp.basename(p)[len(kind) + 1:-4]), p)
             for p in glob.glob(osp.join(work_dir, f'{kind}_*.pth'))
             if osp.basename(p)[len(kind) + 1:-4].isdigit()]
    return max(ckpts)[1] if ckpts else None


def read_scalars(work_dir: str) -> list:
    """Every logged scalar record of the newest run in ``work_dir``."""
    runs = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d, 'vis_data')))
    if not runs:
        raise FileNotFoundError(f'no run logs under {work_dir}')
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_curve(steps, values, path, title, ylabel='loss'):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    ax.plot(steps, values, lw=1.5)
    ax.set_xlabel('iteration')
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# The Runner seed of every stage (``randomness.seed``) when set; None keeps the configs' (0).
# ``tools/demo.py --seed`` sets it: another seed draws another init and sample order on the
# same data, which is how the README's spread of a row is measured.
SEED = None


def build_runner(config: str, work_dir: str, options: dict = None, mode: str = 'train',
                 checkpoint: str = None):
    """The same Runner that tools/train.py and tools/test.py build (seeded with ``SEED``)."""
    from ..runner import build_runner as _build
    if SEED is not None:
        options = {'randomness.seed': SEED, **(options or {})}
    return _build(config, work_dir, cfg_options=options, mode=mode, pin_memory=False,
                  checkpoint=checkpoint)
