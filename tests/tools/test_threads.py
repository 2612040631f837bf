"""--threads of tools/train.py, test.py and inference.py: on CPU the default leaves the
dataloader workers their cores (at least one intra-op thread); on GPU torch's is kept."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from projects.eva import cpu

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS = osp.join(ROOT, 'configs', 'demo', 'eva-cls_vit-tiny-p14_1xb64-80e_digits.py')


def test_default_leaves_the_workers_their_cores():
    assert cpu.default_threads(0, cores=2) == 2
    assert cpu.default_threads(2, cores=2) == 1
    assert cpu.default_threads(8, cores=4) == 1
    assert cpu.default_threads(2, cores=16) == 14


def test_set_threads(monkeypatch):
    monkeypatch.setattr(cpu, 'usable_cores', lambda: 3)
    assert cpu.set_threads(None, num_workers=2, device='cpu') == 1 == torch.get_num_threads()
    assert cpu.set_threads(None, num_workers=0, device='cpu') == 3
    assert cpu.set_threads(2, num_workers=2, device='cpu') == 2  # the user's number wins
    assert cpu.set_threads(None, num_workers=2, device='cuda:0') == 2  # GPU: untouched
    with pytest.raises(ValueError, match='--threads must be >= 1, got 0'):
        cpu.set_threads(0)


def test_workers_come_from_the_config():
    cfg = Config.fromfile(CLS)
    assert cfg.train_dataloader.num_workers == 2
    assert cpu.loader_workers(cfg, 'train_dataloader', 'val_dataloader') == 2
    assert cpu.loader_workers(cfg, 'no_such_dataloader') == 0


@pytest.mark.parametrize('tool', ['train', 'test', 'inference'])
def test_tools_take_threads(tool):
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'_{tool}', osp.join(ROOT, 'tools',
                                                                       f'{tool}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = {'train': [CLS], 'test': [CLS, 'x.pth'], 'inference': [CLS, 'none', 'a.jpg']}[tool]
    assert module.parse_args(argv + ['--threads', '1']).threads == 1
    assert module.parse_args(argv).threads is None
