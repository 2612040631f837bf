"""The venv holds exactly one OpenCV distribution (opencv-python-headless).

opencv-python (required by mmengine and lvis), opencv-contrib-python (required by mmaction2)
and opencv-python-headless all ship the same ``cv2/`` package, so with more than one
installed, whichever pip wrote last silently owns ``cv2``. tools/setup_env.sh installs
mmengine, mmaction2 and lvis without dependencies (requirements/nodeps.txt) and their other
dependencies from requirements/runtime.txt.
"""
import importlib.metadata as md
import os.path as osp
import re

from packaging.requirements import Requirement

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
OPENCV = re.compile(r'^opencv(-contrib)?-python(-headless)?$')


def _name(dist):
    return re.sub(r'[-_.]+', '-', dist.metadata['Name']).lower()


def _pins(path):
    with open(osp.join(ROOT, 'requirements', path)) as f:
        return [Requirement(line.split('#')[0].strip()) for line in f
                if line.split('#')[0].strip()]


def test_exactly_one_opencv_distribution_owns_cv2():
    opencv = sorted(_name(d) for d in md.distributions() if OPENCV.match(_name(d)))
    assert opencv == ['opencv-python-headless'], opencv
    import cv2
    headless = md.distribution('opencv-python-headless')
    owned = {osp.normpath(str(headless.locate_file(f))) for f in headless.files or ()}
    assert osp.normpath(cv2.__file__) in owned
    pin = [r for r in _pins('runtime.txt') if r.name == 'opencv-python-headless']
    assert len(pin) == 1 and headless.version in pin[0].specifier, (headless.version, pin)
    assert cv2.__version__ == '.'.join(headless.version.split('.')[:3])


def test_requirements_pull_no_other_opencv():
    """Nothing installed from runtime/tests.txt requires another OpenCV; the packages that
    do are the no-deps ones, and all their other requirements are installed."""
    installed = {_name(d): d for d in md.distributions()}
    nodeps = {r.name.lower(): r for r in _pins('nodeps.txt')}
    assert set(nodeps) == {'mmengine', 'mmaction2', 'lvis'}
    listed = {r.name.lower() for f in ('runtime.txt', 'tests.txt') for r in _pins(f)}
    assert not listed & set(nodeps), 'installed with dependencies: they pull an OpenCV'
    for name, dist in installed.items():
        for spec in dist.requires or ():
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate({'extra': ''}):
                continue
            if OPENCV.match(req.name.lower()) and req.name.lower() != 'opencv-python-headless':
                assert name in nodeps or name == 'mmcv', \
                    f'{name} requires {req.name}: install it with --no-deps (nodeps.txt)'
    for name, pin in nodeps.items():
        assert name in installed and installed[name].version in pin.specifier
        for spec in installed[name].requires or ():
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate({'extra': ''}):
                continue
            if not OPENCV.match(req.name.lower()):
                dep = re.sub(r'[-_.]+', '-', req.name).lower()
                assert dep in installed, f'{name} needs {req.name}; add it to runtime.txt'


def _setup_env_installs():
    """The names tools/setup_env.sh installs by name, not from requirements/ (mmcv's own
    runtime dependencies, torch); mmcv itself is built there from source."""
    with open(osp.join(ROOT, 'tools', 'setup_env.sh')) as f:
        lines = [ln for ln in f if ln.startswith('$PIP install') and ' -r ' not in ln]
    names = {'mmcv'}
    for line in lines:
        names |= {re.split(r'[=<>]', w)[0].lower() for w in line.split()[2:]
                  if not w.startswith(('-', '"', '$'))}
    return names


def test_every_package_the_code_imports_is_installed_by_name():
    """A third-party package imported by projects/ or tools/ is listed in requirements/ (or
    installed by name in setup_env.sh), not only pulled in by another package (hub.py's tqdm
    came only with mmdet, open_clip and deepspeed)."""
    import ast
    import glob
    import sys
    declared = {r.name.lower() for f in ('runtime.txt', 'tests.txt', 'nodeps.txt',
                                         'distributed.txt', 'build.txt') for r in _pins(f)}
    declared |= _setup_env_installs()
    assert {'numpy', 'pillow', 'torch', 'mmcv'} <= declared  # the scan of setup_env.sh works
    dists = md.packages_distributions()
    missing = {}
    for path in glob.glob(osp.join(ROOT, 'projects', '**', '*.py'), recursive=True) + \
            glob.glob(osp.join(ROOT, 'tools', '**', '*.py'), recursive=True):
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            for name in names:
                top = name.split('.')[0]
                if top in sys.stdlib_module_names or top not in dists or top == 'projects':
                    continue  # the standard library, or this project's own modules
                if not {d.lower() for d in dists[top]} & declared:
                    missing.setdefault(top, osp.relpath(path, ROOT))
    assert not missing, f'imported but not a requirement: {missing}'
