"""Demo data folders are drawn again when stale (another spec, another generator, an older
unstamped folder, an interrupted generation), and only then."""
import json
import os
import os.path as osp

import pytest

from projects.eva.demo import pretrain, synthetic, synthetic_detection
from projects.eva.demo.utils import STAMP, data_stamp, ensure_data


def _make(root, calls, name='a.txt'):
    def make():
        calls.append(root)
        os.makedirs(root, exist_ok=True)
        with open(osp.join(root, name), 'w') as f:
            f.write('x')
    return make


def test_generated_once_then_reused(tmp_path):
    root, calls = str(tmp_path / 'd'), []
    assert ensure_data(root, dict(n=1), _make(root, calls), [synthetic])
    assert not ensure_data(root, dict(n=1), _make(root, calls), [synthetic])
    assert len(calls) == 1
    with open(osp.join(root, STAMP)) as f:
        assert json.load(f)['spec'] == {'n': 1}


@pytest.mark.parametrize('change', ['spec', 'generator', 'no stamp', 'bad stamp'])
def test_stale_folder_is_removed_and_drawn_again(tmp_path, change):
    root, calls, logs = str(tmp_path / 'd'), [], []
    ensure_data(root, dict(n=1), _make(root, calls, 'old.txt'), [synthetic])
    spec, generators = dict(n=1), [synthetic]
    if change == 'spec':
        spec = dict(n=2)
    elif change == 'generator':  # another generator module = other code drew the files
        generators = [synthetic, synthetic_detection]
    elif change == 'no stamp':  # a folder written by the demo before stamps existed
        os.remove(osp.join(root, STAMP))
    else:
        with open(osp.join(root, STAMP), 'w') as f:
            f.write('{trunc')
    assert ensure_data(root, spec, _make(root, calls, 'new.txt'), generators, log=logs.append)
    assert sorted(os.listdir(root)) == sorted(['new.txt', STAMP])  # old files gone
    assert len(calls) == 2 and logs and root in logs[0]


def test_interrupted_generation_is_redone(tmp_path):
    root, calls = str(tmp_path / 'd'), []

    def crash():
        os.makedirs(root)
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        ensure_data(root, dict(n=1), crash, [synthetic])
    assert not osp.exists(osp.join(root, STAMP))
    assert ensure_data(root, dict(n=1), _make(root, calls), [synthetic])


def test_stamp_hashes_the_generator_source(tmp_path, monkeypatch):
    """Editing a generator (the same module, other code) changes the stamp."""
    import shutil
    import types
    src = tmp_path / 'gen.py'
    shutil.copy(synthetic.__file__, src)
    module = types.ModuleType('gen')
    module.__file__ = str(src)
    before = data_stamp(dict(n=1), [module])
    src.write_text(src.read_text() + '\n# drawn differently\n')
    after = data_stamp(dict(n=1), [module])
    assert before['spec'] == after['spec']
    assert before['generator_sha256'] != after['generator_sha256']


def test_mim_stage_redraws_a_folder_left_by_an_older_demo(tmp_path, monkeypatch):
    """The old stage regenerated only when ``mim/train`` was missing, so files of an older
    generator (or count) stayed and were trained on."""
    monkeypatch.setattr(pretrain, 'DATA', dict(num=3, size=28, seed=0))
    stale = tmp_path / 'mim' / 'train' / '00000'
    stale.mkdir(parents=True)
    (stale / '99999999.png').write_bytes(b'old')
    root = pretrain.make_data(str(tmp_path))
    files = sorted(os.listdir(osp.join(root, 'train', '00000')))
    assert files == ['00000000.png', '00000001.png', '00000002.png']
