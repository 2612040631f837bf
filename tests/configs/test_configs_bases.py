"""Moving repeated definitions into bases (and factories) leaves every config's merged dict as
it was. The snapshot holds ``Config.fromfile(...).to_dict()`` of EVERY config under
``configs/`` (bases excluded: they are compared through their children), taken at the commit
in its name, before the moves; the model is built from ``cfg.model`` alone (MODELS.build), so
an equal dict builds the same model. Tuples are kept apart from lists (``{"__tuple__": ...}``)
so a ``(1024, 1024)`` that became ``[1024, 1024]`` counts as a change.

A deliberate recipe change shows up here: regenerate the snapshot with
``python tests/configs/test_configs_bases.py`` and say why in the commit.
"""
import glob
import json
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

try:
    from parsed_configs import parsed_config
except ImportError:  # run as a script (writing the snapshot): tests/ is not on sys.path
    parsed_config = None

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SNAPSHOTS = sorted(glob.glob(osp.join(ROOT, 'tests', 'snapshots', 'configs_*.json')))
CONFIGS = sorted(
    osp.relpath(p, osp.join(ROOT, 'configs'))
    for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p and not osp.basename(p).startswith('_'))


def _plain(value):
    """JSON-ready and exact: dict keys sorted by json, tuples tagged."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return {'__tuple__': [_plain(v) for v in value]}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def merged(name, parse=None):
    """The config's merged dict, JSON-plain; ``parse``: the session's parsed-config cache."""
    cfg = (parse or (lambda n: Config.fromfile(osp.join(ROOT, 'configs', n))))(name)
    return json.loads(json.dumps(_plain(cfg.to_dict()), sort_keys=True))


def _differences(old, new, path=''):
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            if key not in new:
                out.append(f'{path}.{key} missing')
            elif key not in old:
                out.append(f'{path}.{key} added')
            else:
                out += _differences(old[key], new[key], f'{path}.{key}')
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new))
                for d in _differences(a, b, f'{path}[{i}]')]
    return [] if old == new else [f'{path}: {old!r} -> {new!r}'[:200]]


assert len(SNAPSHOTS) == 1, SNAPSHOTS  # one snapshot: the latest refactor's
with open(SNAPSHOTS[0]) as f:
    OLD = json.load(f)
# Top-level tables of per-size / per-recipe entries that configs pick from with
# ``{{_base_.<table>.<entry>}}`` (as detection's ``lsj``): a variable no Runner reads, so a
# base may add one or add entries to one; what the configs picked is compared with the rest.
TABLES = {'lsj', 'schedules', 'seg_pipelines', 'lvis', 'o365', 'digits', 'kinetics_val', 'shapes'}


def test_snapshot_covers_every_config_it_predates():
    """Every config of the snapshot's commit is still there (a config added later has nothing
    to be compared with; test_configs.py builds it)."""
    assert set(OLD) <= set(CONFIGS), sorted(set(OLD) - set(CONFIGS))
    assert len(OLD) >= 137


@pytest.mark.parametrize('name', sorted(OLD))
def test_config_builds_the_dict_it_built_before_the_bases(name):
    old, new = dict(OLD[name]), merged(name, parsed_config)
    for key in TABLES:
        assert isinstance(new.get(key, {}), dict), (name, key)  # a table, nothing else
        old.pop(key, None), new.pop(key, None)
    assert _differences(old, new) == []


CLS_CONFIGS = sorted(
    osp.relpath(p, osp.join(ROOT, 'configs'))
    for p in glob.glob(osp.join(ROOT, 'configs', 'classification', '**', '*.py'),
                              recursive=True)
    if '_base_' not in p)


def _sizes(pipeline):
    return {t.get('scale') if t['type'] != 'CenterCrop' else t['crop_size']
            for t in pipeline if t['type'] in ('RandomResizedCrop', 'ResizeEdge', 'CenterCrop')}


@pytest.mark.parametrize('name', CLS_CONFIGS)
def test_classification_pipelines_are_at_the_backbone_size(name):
    """A recipe picks its pipelines from ``in1k_pipelines`` by name: the picked ones crop and
    resize to the size the backbone is built for (its pos-embed / RoPE grid)."""
    cfg = parsed_config(name)
    size = cfg.model.backbone.img_size
    assert cfg.img_size == size, name
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(key):
            pipeline = cfg[key].dataset.pipeline
            assert pipeline, (name, key)
            assert _sizes(pipeline) == {size}, (name, key, _sizes(pipeline))


if __name__ == '__main__':  # write the snapshot of the tree as it is now
    # the commit the tree is at (or the one it was exported from: an argument)
    sha = sys.argv[1] if len(sys.argv) > 1 else subprocess.check_output(
        ['git', '-C', ROOT, 'rev-parse', '--short=7', 'HEAD'], text=True).strip()
    out = osp.join(ROOT, 'tests', 'snapshots', f'configs_{sha}.json')
    sys.path.insert(0, ROOT)
    with open(out, 'w') as f:
        json.dump({name: merged(name) for name in CONFIGS}, f, sort_keys=True, indent=0)
    print(out, len(CONFIGS))
