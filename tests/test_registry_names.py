"""Importing ``projects.eva`` (every config does, through ``custom_imports``) leaves every entry
of the upstream registries as it was: our classes are registered under names of their own, so
a config of mmdet / mmseg / mmaction2 / mmpretrain run in the same process is unchanged."""
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

SCRIPT = r'''
import importlib, sys
sys.path.insert(0, sys.argv[1])
from mmengine.registry import Registry

PACKAGES = ('mmengine', 'mmpretrain', 'mmdet', 'mmseg', 'mmaction')


def snapshot():
    out = {}
    for pkg in PACKAGES:
        reg = importlib.import_module(pkg + '.registry')
        for attr in dir(reg):
            registry = getattr(reg, attr)
            if isinstance(registry, Registry):
                for key, obj in registry.module_dict.items():
                    out[pkg, attr, key] = obj
    return out


def changed(before, after):
    return sorted(f'{pkg}.{reg}[{key!r}]: {before[pkg, reg, key]} -> {after.get((pkg, reg, key))}'
                  for pkg, reg, key in before
                  if after.get((pkg, reg, key)) is not before[pkg, reg, key])


# 1. upstream alone (mmaction.models needs the stack fix for the DRN module its wheel lacks,
#    so it comes in step 2)
for pkg in ('mmpretrain', 'mmdet', 'mmseg'):
    importlib.import_module(pkg + '.utils').register_all_modules(init_default_scope=False)
for mod in ('mmaction.datasets', 'mmaction.evaluation', 'mmaction.visualization'):
    importlib.import_module(mod)
upstream = snapshot()
assert len(upstream) > 1000, len(upstream)

# 2. the root package and the stack fixes (what tools/*.py apply)
import projects.eva  # noqa: E402
from projects.eva import compat  # noqa: E402
compat.apply()
importlib.import_module('mmaction.utils').register_all_modules(init_default_scope=False)
root = snapshot()
bad = changed(upstream, root)

# 3. every task package: what configs import
for sub in ('models', 'engine', 'pretrain', 'classification', 'detection', 'segmentation',
            'video', 'clip', 'converters', 'apis'):
    importlib.import_module('projects.eva.' + sub)
bad += changed(root, snapshot())
print('\n'.join(bad) if bad else 'OK')
'''


@pytest.mark.slow  # starts a fresh Python (imports the whole stack)
def test_importing_projects_eva_shadows_no_upstream_registry_entry():
    out = subprocess.run([sys.executable, '-c', SCRIPT, ROOT], capture_output=True, text=True,
                         timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == 'OK', out.stdout
