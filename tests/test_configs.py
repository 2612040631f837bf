"""Every shipped config (real recipes and demos) parses, passes the typo check, and builds its
model; the giant ones are built on the meta device, so no memory is spent."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, MODELS
from mmengine.utils import import_modules_from_strings

from projects.eva.runner import check_top_level_keys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    osp.relpath(p, osp.join(ROOT, 'configs'))
    for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p and not osp.basename(p).startswith('_'))


def test_configs_are_found():
    tasks = {c.split('/')[0] for c in CONFIGS}
    assert tasks == {'classification', 'clip', 'demo', 'detection', 'pretrain', 'segmentation',
                     'video'}, tasks
    assert len(CONFIGS) >= 50


def _without_teacher_weights(model_cfg):
    """MIM teachers load their (absent here) CLIP weights at build time."""
    if isinstance(model_cfg.get('teacher'), dict) and model_cfg.teacher.get('checkpoint'):
        model_cfg.teacher.checkpoint = None
        model_cfg.teacher.setdefault('init_seed', 0)
    return model_cfg


def _point_class_freq_at(cfg, path):
    """LVIS federated losses read per-class image counts at build time."""
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if key == 'class_freq' and isinstance(value, str):
                cfg[key] = path
            else:
                _point_class_freq_at(value, path)
    elif isinstance(cfg, (list, tuple)):
        for item in cfg:
            _point_class_freq_at(item, path)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_parses_and_builds(name, tmp_path):
    path = osp.join(ROOT, 'configs', name)
    cfg = Config.fromfile(path)
    check_top_level_keys(cfg, path)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(key):
            assert cfg[key].dataset.type, (name, key)
    if cfg.get('train_cfg'):
        assert cfg.get('optim_wrapper') and cfg.get('param_scheduler') is not None, name
    model_cfg = _without_teacher_weights(cfg.model)
    cat_info = tmp_path / 'cat_info.json'
    cat_info.write_text(json.dumps([dict(id=i + 1, image_count=i % 7 + 1) for i in range(1203)]))
    _point_class_freq_at(model_cfg, str(cat_info))
    scope = cfg.get('default_scope', 'mmpretrain')
    # mmaction's mixup/cutmix draw a Beta distribution at init, which meta tensors cannot do
    blending = (model_cfg.get('data_preprocessor') or {}).pop('blending', None)
    with DefaultScope.overwrite_default_scope(scope):
        if blending:
            MODELS.build(blending)
        with torch.device('meta'):
            model = MODELS.build(model_cfg)
    assert sum(p.numel() for p in model.parameters()) > 0
