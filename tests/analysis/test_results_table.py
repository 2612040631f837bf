"""results_table: metrics of run dirs land in the right rows with the right deltas."""
import json
import os
import os.path as osp

import pytest

from projects.eva.analysis.results import PAPER, collect, markdown, read_run

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def fake_run(root, name, config, records, stamp='20260101_000000'):
    wd = osp.join(root, name)
    os.makedirs(osp.join(wd, stamp, 'vis_data'))
    open(osp.join(wd, config), 'w').close()
    with open(osp.join(wd, stamp, 'vis_data', 'scalars.json'), 'w') as f:
        for r in records:
            f.write(json.dumps(r) + '\n')
    return wd


def test_runs_matched_by_config_name(tmp_path):
    cls = fake_run(tmp_path, 'cls', 'eva-g-p14_336px_in1k-v2.py',
                   [{'loss': 1.0, 'step': 1}, {'accuracy/top1': 80.57, 'step': 2}])
    det = fake_run(tmp_path, 'det', 'cascade-mask-rcnn_eva-g-p16_lsj-1280_64xb1-45k_'
                   'coco-det_test-1536.py', [{'coco/bbox_mAP': 0.642, 'coco/segm_mAP': 0.5}])
    vid = fake_run(tmp_path, 'vid', 'eva-g-p14_k722-pre_u16-1e_kinetics400-rgb.py',
                   [{'acc/top1': 0.88, 'step': 1}])
    seg = fake_run(tmp_path, 'seg', 'whatever.py', [{'mIoU': 60.0}])
    demo = fake_run(tmp_path, 'demo', 'eva-cls_vit-tiny-p14_1xb64-30e_digits.py',
                    [{'accuracy/top1': 97.0}])
    found, unmatched = collect([cls, det, vid, seg + ':ade20k', demo])
    assert found['in1k-v2'][0] == pytest.approx(80.57)
    assert found['coco-det'][0] == pytest.approx(64.2)  # mmdet logs fractions
    assert found['k400'][0] == pytest.approx(88.0)
    assert found['ade20k'][0] == pytest.approx(60.0)
    assert 'coco-seg' not in found  # a det-checkpoint run is not the seg benchmark
    assert [r.work_dir for r in unmatched] == [demo]
    text = markdown(found, unmatched)
    assert '| classification | ImageNet-V2, 336px | top-1 | 80.57 | 81.57 | -1.00 |' in text
    assert '| detection | COCO val2017, 1536 test, soft-NMS | box AP | 64.20 | 64.16 | +0.04 |' \
        in text
    assert '| video | Kinetics-400, 16x3x4 views | top-1 | 88.00 | 89.70 | -1.70 |' in text
    assert '| semantic seg. | ADE20K, single scale | mIoU | 60.00 | 61.47 | -1.47 |' in text
    assert text.count('not run') == len(PAPER) - 4
    assert 'eva-cls_vit-tiny-p14_1xb64-30e_digits.py' in text


def test_newest_value_wins_and_errors(tmp_path):
    wd = fake_run(tmp_path, 'a', 'eva-g-p14_32xb16-10e_in1k-336px.py',
                  [{'accuracy/top1': 10.0}, {'accuracy/top1': 89.0}])
    assert read_run(wd).metrics['accuracy/top1'] == 89.0
    with pytest.raises(FileNotFoundError, match='work dir not found'):
        read_run(str(tmp_path / 'missing'))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match='no logged metrics'):
        read_run(str(empty))
    with pytest.raises(KeyError, match='unknown benchmark'):
        collect([wd + ':imagenet-9000'])


def test_every_paper_config_pattern_matches_a_real_config():
    """The name rules point at configs that exist in this repository (where written)."""
    import glob
    import re
    names = [osp.basename(p) for p in glob.glob(osp.join(ROOT, 'configs/**/*.py'),
                                                recursive=True)]
    for key in ('in1k-336', 'in1k-560', 'in1k-v2', 'in1k-real', 'in1k-a', 'in1k-r',
                'in1k-sketch', 'objectnet', 'k400', 'k600', 'k700', 'coco-det', 'coco-seg',
                'lvis-box', 'lvis-mask'):
        paper = next(p for p in PAPER if p.key == key)
        hits = [n for n in names if re.search(paper.config, n)]
        assert hits, key


def test_tool_prints_table(tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        '_results_table', osp.join(ROOT, 'tools/analysis_tools/results_table.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    wd = fake_run(tmp_path, 'k', 'eva-g-p14_k722-pre_u16-2e_kinetics700-rgb.py',
                  [{'acc/top1': 0.83}])
    module.main([wd, '--only-run', '--out', str(tmp_path / 'r.md')])
    out = capsys.readouterr().out
    assert '| video | Kinetics-700, 16x3x4 views | top-1 | 83.00 | 82.90 | +0.10 |' in out
    assert out.count('\n| ') == 1  # one row below the header
    assert open(tmp_path / 'r.md').read().strip() == out.strip()
