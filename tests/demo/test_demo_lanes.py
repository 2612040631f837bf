"""tools/demo.py's lanes: stages that read another's checkpoint stay behind it in one lane,
the lanes balance the measured costs, a failing lane names its stage and log."""
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))
import demo  # noqa: E402


def test_default_lanes_keep_chains_and_balance():
    lanes = demo.plan_lanes(list(demo.STAGES), 2)
    assert sorted(s for lane in lanes for s in lane) == sorted(demo.STAGES)
    for first, then in demo.CHAINS:
        lane = next(lane for lane in lanes if then in lane)
        assert first in lane and lane.index(first) < lane.index(then)
    loads = [sum(demo.COST[s] for s in lane) for lane in lanes]
    assert len(lanes) == 2 and max(loads) - min(loads) <= 2.5, (lanes, loads)
    # the 7 stages at the measured costs: 7.4 / 8.7 minutes, not 16.1 in one lane
    assert sorted(loads) == pytest.approx([7.4, 8.7])
    assert sorted(lanes) == [['detection', 'segmentation', 'video'],
                             ['pretrain', 'classification', 'clip', 'eva02']]


def test_lanes_for_subsets_and_one_job():
    assert demo.plan_lanes(['eva02', 'clip'], 2) == [['clip', 'eva02']]  # one chain: one lane
    assert demo.plan_lanes(['detection', 'video'], 2) == [['detection'], ['video']]
    assert demo.plan_lanes(list(demo.STAGES), 1) == [list(demo.STAGES)]


@pytest.mark.slow
def test_a_failing_lane_is_named(tmp_path, capsys):
    not_a_dir = tmp_path / 'data'
    not_a_dir.write_text('a file where the data folder should be')
    with pytest.raises(SystemExit) as err:
        demo.main(['--stages', 'pretrain,video', '--jobs', '2', '--work-dir',
                   str(tmp_path / 'work'), '--data-root', str(not_a_dir)])
    message = str(err.value)
    for i in range(2):
        log = tmp_path / 'work' / f'lane_{i}.log'
        assert f'lane {i} exited with 1 in stage ' in message
        assert f'log: {log}' in message and 'FileExistsError' in log.read_text()
    assert 'in stage pretrain' in message and 'in stage video' in message


def test_seed_reaches_every_lane_and_runner(tmp_path, monkeypatch):
    """``--seed N`` (how the README's spread of a row is measured) is handed to each lane's
    process and becomes the Runner seed of every stage; without it the configs' seed stays."""
    from projects.eva.demo import utils
    cmds = []

    class Exited:
        def __init__(self, cmd, **kwargs):
            cmds.append(cmd)

        def wait(self):
            return 1

    with monkeypatch.context() as m, pytest.raises(SystemExit):
        m.setattr(demo.subprocess, 'Popen', Exited)
        demo.main(['--stages', 'pretrain,video', '--jobs', '2', '--seed', '3',
                   '--work-dir', str(tmp_path / 'work'), '--data-root', str(tmp_path / 'data')])
    assert len(cmds) == 2 and all(c[c.index('--seed') + 1] == '3' for c in cmds), cmds

    config = utils.config_path('demo/eva-video_vit-tiny-p14_1xb16-8e_moving-shapes.py')
    monkeypatch.setattr(utils, 'SEED', None)
    assert utils.build_runner(config, str(tmp_path / 'a')).seed == 0
    monkeypatch.setattr(utils, 'SEED', 3)
    assert utils.build_runner(config, str(tmp_path / 'b')).seed == 3
