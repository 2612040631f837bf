"""docs/custom_data.md's EVA-02-B recipes: a copy of any configs/custom/ config loads from any
folder (its bases are found through ``EVA_CONFIGS``, which the tools set), and the "Try it on
a CPU first" commands run exactly as written (slow)."""
import glob
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest
from mmengine.config import Config

from projects.eva import compat

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CUSTOM = sorted(glob.glob(osp.join(ROOT, 'configs', 'custom', '*.py')))
GUIDE = osp.join(ROOT, 'docs', 'custom_data.md')


@pytest.mark.parametrize('path', CUSTOM, ids=osp.basename)
def test_copy_outside_the_repository_finds_its_bases(path, tmp_path, monkeypatch):
    copy = tmp_path / 'elsewhere' / 'my.py'
    copy.parent.mkdir()
    shutil.copy(path, copy)
    monkeypatch.setenv('EVA_CONFIGS', 'unset')  # recorded, so undone after the test
    monkeypatch.delenv('EVA_CONFIGS')
    in_place = Config.fromfile(path).to_dict()  # the default `..`, relative to configs/custom
    with pytest.raises(FileNotFoundError):  # what a copy did before: `../<task>/...` is gone
        Config.fromfile(str(copy))
    compat.apply()  # what every tool does first
    assert os.environ['EVA_CONFIGS'] == osp.join(ROOT, 'configs')
    assert Config.fromfile(str(copy)).to_dict() == in_place


def test_exported_config_root_wins(monkeypatch):
    monkeypatch.setenv('EVA_CONFIGS', '/my/configs')
    compat.config_root()
    assert os.environ['EVA_CONFIGS'] == '/my/configs'


def test_recipes_fit_and_tiny_variants_inherit_them():
    """The four recipes are EVA-02-B with activation checkpointing and bf16; each CPU variant
    inherits its recipe (so the guide's tiny run goes through the recipe's own config)."""
    names = [osp.basename(p) for p in CUSTOM]
    recipes = [n for n in names if n.startswith('eva02-b') and '_cpu-tiny' not in n]
    assert len(recipes) == 4
    for name in recipes:
        cfg = Config.fromfile(osp.join(ROOT, 'configs', 'custom', name))
        backbone = cfg.model.backbone
        assert backbone.arch == 'eva02-base' and backbone.with_cp is True, name
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper', name
        assert cfg.optim_wrapper.dtype == 'bfloat16', name
        tiny = name[:-3] + '_cpu-tiny.py'
        assert tiny in names, name
        with open(osp.join(ROOT, 'configs', 'custom', tiny)) as f:
            assert f"_base_ = '{{{{$EVA_CONFIGS:..}}}}/custom/{name}'" in f.read(), tiny


def guide_cpu_commands():
    """The fenced block under "### Try it on a CPU first"."""
    text = open(GUIDE, encoding='utf-8').read()
    section = text.split('### Try it on a CPU first', 1)[1]
    block = re.search(r'```bash\n(.*?)```', section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_guide_cpu_block_names_every_tiny_variant():
    commands = guide_cpu_commands()
    tiny = {osp.basename(p) for p in CUSTOM if '_cpu-tiny' in p}
    trained = {c.split()[-1].split('/')[-1] for c in commands
               if c.startswith('python tools/train.py configs/custom/')}
    assert trained == tiny and len(tiny) == 4


def _metric(work_dir):
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    assert files, work_dir
    metrics = {}
    with open(files[-1]) as f:
        for line in f:
            metrics.update(json.loads(line))
    return metrics


@pytest.mark.slow
def test_guide_cpu_commands_run_as_written(tmp_path):
    """Each command as written, through bash, from a scratch folder that holds links to the
    repository's configs/, projects/ and tools/ (so data/ and work_dirs/ land in tmp_path);
    ``python`` is this interpreter (its folder first on PATH)."""
    for name in ('configs', 'projects', 'tools'):
        os.symlink(osp.join(ROOT, name), tmp_path / name)
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PATH=osp.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    env.pop('EVA_CONFIGS', None)
    for cmd in guide_cpu_commands():
        run = subprocess.run(['bash', '-c', cmd], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=600)
        assert run.returncode == 0, (cmd, run.stdout[-3000:], run.stderr[-3000:])
    expected = {
        'eva02-b-p14_custom-imagefolder_cpu-tiny': 'accuracy/top1',
        'eva02-b-p16_cascade-mask-rcnn_custom-coco_cpu-tiny': 'coco/segm_mAP',
        'eva02-b-p16_upernet_custom-seg_cpu-tiny': 'mIoU',
        'eva02-b-p14_custom-video_cpu-tiny': 'acc/top1',
        'my_digits': 'accuracy/top1',  # the copy in my_configs/
    }
    for name, key in expected.items():
        work = tmp_path / 'work_dirs' / name
        assert glob.glob(str(work / '*.pth')), name
        assert key in _metric(str(work)), (name, _metric(str(work)))
    assert (tmp_path / 'work_dirs' / 'my_digits' / 'epoch_2.pth').exists()
    # the video variant learns frame order (4 directions, chance 0.25; 0.906 on 2 cores)
    assert _metric(str(tmp_path / 'work_dirs' / 'eva02-b-p14_custom-video_cpu-tiny'))[
        'acc/top1'] >= 0.5
