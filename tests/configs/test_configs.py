"""Every shipped config (real recipes and demos) parses, passes the typo check, and builds its
model; the giant ones are built on the meta device, so no memory is spent."""
import glob
import json
import os.path as osp

import pytest
import torch
from parsed_configs import parsed_config
from mmengine.registry import DefaultScope, MODELS
from mmengine.utils import import_modules_from_strings

from projects.eva.engine.config_check import check_top_level_keys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    osp.relpath(p, osp.join(ROOT, 'configs'))
    for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p and not osp.basename(p).startswith('_'))


def test_configs_are_found():
    tasks = {c.split('/')[0] for c in CONFIGS}
    assert tasks == {'classification', 'clip', 'custom', 'demo', 'detection', 'pretrain',
                     'segmentation', 'video'}, tasks
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
    cfg = parsed_config(name)
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
    if cfg.get('tta_model'):  # tools/test.py --tta wraps the model in it
        assert cfg.tta_model.get('type') and cfg.get('tta_pipeline'), name


# ------------------------------------------------------------------ recipes = EVA-01's numbers
def _cfg(name):
    return parsed_config(name)


def _schedule(cfg):
    warm, main = cfg.param_scheduler
    return warm.end, main


@pytest.mark.parametrize('name,res,lr,lrd,betas,eps,epochs,warmup,per_gpu,smooth', [
    ('classification/eva-g-p14_64xb64-60e_in21k-224px.py', 224, 1e-4, 0.85, (0.9, 0.98), 1e-6,
     60, 15, 64, 0.1),
    ('classification/eva-g-p14_32xb16-10e_in1k-336px.py', 336, 3e-5, 0.95, (0.9, 0.999), 1e-8,
     10, 2, 16, 0.3),
    ('classification/eva-g-p14_32xb16-15e_in1k-560px.py', 560, 3e-5, 0.95, (0.9, 0.999), 1e-8,
     15, 2, 16, 0.3),
])
def test_classification_recipes_follow_eva01(name, res, lr, lrd, betas, eps, epochs, warmup,
                                             per_gpu, smooth):
    """Reference spec 3.1: frozen patch embedding (stop_grad_conv1), mean pooling + fc_norm,
    head x0.001, dpr 0.4, wd 0.05, no grad clip, layer decay over 42 ids, CLIP mean/std."""
    cfg = _cfg(name)
    bb, head, opt = cfg.model.backbone, cfg.model.head, cfg.optim_wrapper
    assert (bb.arch, bb.img_size, bb.patch_size) == ('giant', res, 14)
    assert bb.freeze_patch_embed and bb.out_type == 'avg_featmap' and bb.drop_path_rate == 0.4
    assert head.init_scale == 0.001 and head.loss.label_smooth_val == smooth
    assert (opt.optimizer.lr, opt.optimizer.betas, opt.optimizer.eps) == (lr, betas, eps)
    assert opt.optimizer.weight_decay == 0.05 and opt.get('clip_grad') is None
    assert opt.paramwise_cfg.layer_decay_rate == lrd
    assert cfg.train_dataloader.batch_size == per_gpu
    end, cosine = _schedule(cfg)
    assert (end, cosine.end, cfg.train_cfg.max_epochs) == (warmup, epochs, epochs)
    assert cfg.data_preprocessor.mean == [0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255]
    ema = [h for h in cfg.get('custom_hooks', []) if h.type == 'EMAHook']
    if res == 224:  # IN-21K intermediate: CutMix 1.0, 21841 classes, RRC (0.5, 1), no EMA
        assert cfg.model.train_cfg.augments == dict(type='CutMix', alpha=1.0)
        assert head.num_classes == 21841 and not ema
        assert cfg.train_dataloader.dataset.pipeline[1].crop_ratio_range == (0.5, 1.0)
    else:  # IN-1K: EMA 0.9999, cosine to 0, RRC (0.08, 1)
        assert [h.momentum for h in ema] == [1e-4] and cosine.eta_min == 0.
        assert head.num_classes == 1000
        assert cfg.train_dataloader.dataset.pipeline[1].crop_ratio_range == (0.08, 1.0)


def test_linear_probe_recipe_follows_eva01():
    cfg = _cfg('classification/eva-g-p14_linear-probe_40xb400-90e_in1k-224px.py')
    bb, opt = cfg.model.backbone, cfg.optim_wrapper.optimizer
    assert bb.frozen_stages == 40 and bb.out_type == 'cls_token' and bb.final_norm
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay, opt.eta) == ('LARS', 1.0, 0.9, 0., 1e-3)
    assert cfg.train_dataloader.batch_size * 40 == 16000
    end, cosine = _schedule(cfg)
    assert (end, cosine.end) == (10, 90)


DET = 'detection/cascade-mask-rcnn_eva-g-p16_lsj-1280_64xb1-'


@pytest.mark.parametrize('name,lr,iters,warmup,milestones', [
    (DET + '45k_coco-det.py', 2.5e-5, 45000, 500, [40000, 44999]),
    (DET + '45k_coco-seg.py', 2.5e-5, 45000, 500, [40000, 44999]),
    (DET + '75k_lvis.py', 2e-4, 75001, 250, [70000, 75000]),
])
def test_detection_recipes_follow_eva01(name, lr, iters, warmup, milestones):
    """Reference spec 3.4: ViTDet backbone options, AdamW wd 0.1 on every parameter, layer
    decay 0.9, batch 64 x 1, LSJ 1280, ImageNet mean/std."""
    cfg = _cfg(name)
    bb = cfg.model.backbone
    assert (bb.arch, bb.patch_size, bb.img_size, bb.window_size) == ('giant', 16, 1280, 16)
    assert tuple(bb.global_block_indices) == (3, 7, 11, 15, 19, 23, 27, 31, 35, 39)
    assert bb.use_rel_pos and bb.freeze_patch_embed and bb.with_cp and not bb.with_cls_token
    assert bb.drop_path_rate == 0.6 and not bb.final_norm
    assert cfg.model.neck.scale_factors == (4.0, 2.0, 1.0, 0.5)
    assert cfg.model.neck.norm_cfg.type == 'LN2d'  # the real pyramid keeps its LayerNorm
    assert [s.assigner.pos_iou_thr for s in cfg.model.train_cfg.rcnn] == [0.5, 0.6, 0.7]
    assert all(h.reg_class_agnostic for h in cfg.model.roi_head.bbox_head)
    opt = cfg.optim_wrapper
    assert (opt.optimizer.lr, opt.optimizer.betas, opt.optimizer.weight_decay) == \
        (lr, (0.9, 0.999), 0.1)
    assert opt.paramwise_cfg == dict(layer_decay_rate=0.9, no_decay_1d=False)
    assert cfg.train_dataloader.batch_size == 1 and cfg.train_cfg.max_iters == iters
    end, steps = _schedule(cfg)
    assert end == warmup and cfg.param_scheduler[0].start_factor == 0.001
    assert steps.milestones == milestones and steps.gamma == 0.1
    assert cfg.model.data_preprocessor.mean == [123.675, 116.28, 103.53]
    lsj = [t for t in cfg.train_pipeline if t.type == 'RandomResize'][0]
    assert lsj.scale == (1280, 1280) and lsj.ratio_range == (0.1, 2.0)
    if 'lvis' in name:
        assert cfg.train_dataloader.dataset.oversample_thr == 0.001
        fed = cfg.model.roi_head.bbox_head[0].loss_cls
        assert (fed.num_fed_classes, fed.freq_weight_power, fed.num_classes) == (50, 0.5, 1203)
        assert (cfg.model.test_cfg.rcnn.score_thr, cfg.model.test_cfg.rcnn.max_per_img) == \
            (0.02, 300)
    if 'coco-seg' in name:
        assert cfg.model.roi_head.maskness_thresh == 0.5


def test_detection_1536_evaluation_follows_eva01():
    coco = _cfg(DET + '45k_coco-det_test-1536.py')
    assert coco.model.backbone.img_size == 1280 and coco.model.backbone.rel_pos_interp == 'beit'
    assert coco.model.data_preprocessor.test_pad_size == (1536, 1536)
    assert coco.model.test_cfg.rcnn.nms == dict(type='soft_nms', iou_threshold=0.6,
                                                method='linear', sigma=0.5, min_score=1e-3)
    lvis = _cfg(DET + '75k_lvis_test-1536.py').model.test_cfg.rcnn
    assert (lvis.score_thr, lvis.max_per_img) == (0.001, 1000)


def test_mim_pretraining_recipe_follows_eva01():
    """Reference spec 2: AdamW 1e-3 (0.9, 0.98) eps 1e-6 wd 0.05 (none on 1-D, pos_embed,
    cls_token), batch 128 x 32, 150 epochs, 2 warmup epochs from 0, cosine to 1e-5, clip 3.0,
    dpr 0.1, fp16 dynamic scale 2^16 / 500, RRC (0.2, 1), 105 masked of 16x16 (min block 16),
    CLIP ViT-L/14 teacher, 1408 -> 768 head."""
    cfg = _cfg('pretrain/eva-mim_vit-g-p14_128xb32-150e_merged30m.py')
    bb, head, opt = cfg.model.backbone, cfg.model.head, cfg.optim_wrapper
    assert (bb.arch, bb.patch_size, bb.img_size, bb.drop_path_rate) == ('giant', 14, 224, 0.1)
    assert bb.with_mask_token and bb.final_norm and (head.in_channels, head.out_channels) == \
        (1408, 768)
    assert cfg.model.teacher.arch == 'L/14'
    assert (opt.optimizer.lr, opt.optimizer.betas, opt.optimizer.eps,
            opt.optimizer.weight_decay) == (1e-3, (0.9, 0.98), 1e-6, 0.05)
    assert opt.clip_grad == dict(max_norm=3.0) and opt.dtype == 'float16'
    assert opt.loss_scale == dict(init_scale=2. ** 16, growth_interval=500)
    assert opt.paramwise_cfg.flat_decay_mult == 0.
    assert {k: v.decay_mult for k, v in opt.paramwise_cfg.custom_keys.items()} == \
        {'pos_embed': 0., 'cls_token': 0.}
    warm, cosine = cfg.param_scheduler
    assert (warm.start_factor < 1e-8, warm.end, cosine.end, cosine.eta_min) == (True, 2, 150, 1e-5)
    assert cfg.train_cfg.max_epochs == 150 and cfg.train_dataloader.batch_size == 32
    for data in cfg.train_dataloader.dataset.dataset.datasets:  # the merged-30M parts
        rrc, flip, mask = data.pipeline[1:4]
        assert rrc.crop_ratio_range == (0.2, 1.0) and flip.prob == 0.5
        assert (mask.input_size, mask.num_masking_patches, mask.min_num_patches,
                mask.min_aspect) == (16, 105, 16, 0.3)
    assert len(cfg.train_dataloader.dataset.dataset.datasets) == 6
