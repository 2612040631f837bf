"""TensorBoard scalars on any config with one switch (tools/train.py --tensorboard)."""
import glob
import os.path as osp
import sys

import pytest
from mmengine.config import Config

from projects.eva.tensorboard import enable_tensorboard

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools'))
CONFIGS = sorted(
    osp.relpath(p, osp.join(ROOT, 'configs'))
    for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p and not osp.basename(p).startswith('_'))


def _backend_types(cfg):
    return [str(b['type']).split('.')[-1] for b in cfg.visualizer.vis_backends]


@pytest.mark.parametrize('name', CONFIGS)
def test_every_config_gets_a_tensorboard_backend(name):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    before = _backend_types(cfg) if cfg.get('visualizer') else []
    enable_tensorboard(cfg)
    enable_tensorboard(cfg)  # idempotent
    types = _backend_types(cfg)
    assert types.count('TensorboardVisBackend') == 1
    assert [t for t in types if t != 'TensorboardVisBackend'] == \
        [t for t in before if t != 'TensorboardVisBackend'] or not before
    import importlib
    registry = importlib.import_module(f'{cfg.get("default_scope", "mmengine")}.registry')
    assert registry.VISUALIZERS.get(cfg.visualizer.type) is not None
    assert registry.VISBACKENDS.get('TensorboardVisBackend') is not None


def test_config_without_visualizer_gets_one():
    cfg = Config(dict(model=dict(type='x')))
    enable_tensorboard(cfg)
    assert cfg.visualizer.type == 'mmengine.Visualizer'
    assert _backend_types(cfg) == ['LocalVisBackend', 'TensorboardVisBackend']


@pytest.mark.slow
def test_train_with_tensorboard_writes_scalars(tmp_path, one_thread):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import train as train_cli
    from projects.eva.demo.synthetic import make_digits_folders
    root = str(tmp_path / 'digits')
    make_digits_folders(root, size=56, val_fraction=0.9)  # 180 training images
    work = str(tmp_path / 'work')
    opts = {'train_dataloader.dataset.dataset.data_root': root,
            'val_dataloader.dataset.data_root': root,
            'test_dataloader.dataset.data_root': root, 'train_cfg.max_epochs': 1,
            'train_cfg.val_interval': 1, 'default_hooks.logger.interval': 1}
    for k in ('train', 'val', 'test'):
        opts.update({f'{k}_dataloader.num_workers': 0,
                     f'{k}_dataloader.persistent_workers': False})
    train_cli.main([osp.join(ROOT, 'configs/demo/eva-cls_vit-tiny-p14_1xb64-80e_digits.py'),
                    '--work-dir', work, '--tensorboard', '--cfg-options',
                    *[f'{k}={v}' for k, v in opts.items()]])
    events = glob.glob(osp.join(work, '*', 'vis_data', 'events.out.tfevents.*'))
    assert len(events) == 1, events
    acc = EventAccumulator(osp.dirname(events[0]))
    acc.Reload()
    tags = acc.Tags()['scalars']
    assert {'loss', 'lr', 'accuracy/top1'} <= set(tags), tags
    losses = [e.value for e in acc.Scalars('loss')]
    assert len(losses) == 3  # 180 images / batch 64, logged every iteration
    assert all(v > 0 for v in losses)
