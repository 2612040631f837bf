"""DINO on EVA-02 (configs/detection/dino-4scale_eva02-*) carries detrex's dino_eva recipe
(projects/dino_eva/configs/dino-eva-02/*, its train_net.py for the L runs) and builds at the
released size on the meta device; the metafile's parameter counts are these models'."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
B_IN21K = 'checkpoints/eva02/eva02_B_pt_in21k_p14to16_mm.pth'
L_M38M = 'checkpoints/eva02/eva02_L_pt_m38m_p14to16_mm.pth'
L_IN21K = 'checkpoints/eva02/eva02_L_pt_in21k_p14to16_mm.pth'
L_O365 = 'checkpoints/eva02/eva02_L_m38m_to_o365_mm.pth'
# config: arch, size, global blocks, dpr, act-ckpt, backbone init, classes, optimiser
# ('lrd', rate) = layer decay at lr 1e-4 (detrex tools/train_net.py, B) or ('mult', None) =
# lr 2e-4 with x0.1 on the backbone + pyramid + sampling offsets (projects/dino_eva/train_net.py, L)
RECIPES = [
    ('dino-4scale_eva02-b-p16_lsj-1024_16xb1-90k_coco.py', 'eva02-base', 1024, (2, 5, 8, 11),
     0.1, False, B_IN21K, 80, ('lrd', 0.7)),
    ('dino-4scale_eva02-l-p16_lsj-1024_16xb1-90k_coco.py', 'eva02-large', 1024,
     (5, 11, 17, 23), 0.4, False, L_M38M, 80, ('mult', None)),
    ('dino-4scale_eva02-b-p16_win32-lsj-1536_16xb1-90k_coco.py', 'eva02-base', 1536,
     (1, 3, 5, 7, 9, 11), 0.1, True, B_IN21K, 80, ('lrd', 0.7)),
    ('dino-4scale_eva02-l-p16_lsj-1280_16xb1-90k_coco.py', 'eva02-large', 1280,
     (5, 11, 17, 23), 0.4, True, L_M38M, 80, ('mult', None)),
    ('dino-4scale_eva02-l-p16_o365-pre_lsj-1536_16xb1-90k_coco.py', 'eva02-large', 1536,
     (2, 5, 8, 11, 14, 17, 20, 23), 0.3, True, L_O365, 80, ('mult', None)),
    ('dino-4scale_eva02-l-p16_lsj-1024_16xb1-90k_lvis.py', 'eva02-large', 1024,
     (5, 11, 17, 23), 0.4, False, L_IN21K, 1203, ('mult', None)),
]


def _cfg(name):
    return Config.fromfile(osp.join(ROOT, 'configs', 'detection', name))


def test_every_dino_config_is_in_the_table():
    import glob
    shipped = {osp.basename(p) for p in glob.glob(osp.join(ROOT, 'configs', 'detection',
                                                           'dino*.py'))}
    assert shipped == {r[0] for r in RECIPES}


@pytest.mark.parametrize('row', RECIPES, ids=[r[0] for r in RECIPES])
def test_dino_eva02_recipe(row):
    name, arch, size, glb, dpr, cp, init, classes, (opt_kind, lrd) = row
    cfg = _cfg(name)
    model, bb = cfg.model, cfg.model.backbone
    assert (model.type, model.num_queries, model.with_box_refine, model.as_two_stage,
            model.num_feature_levels) == ('DINO', 900, True, True, 4)
    # the cascade's EVA-02 ViTDet backbone: window 16, RoPE per window, global blocks
    assert (bb.type, bb.arch, bb.patch_size, bb.img_size, bb.window_size) == \
        ('mmpretrain.EVAViT', arch, 16, size, 32 if 'win32' in name else 16)
    assert tuple(bb.global_block_indices) == glb and (bb.drop_path_rate, bb.with_cp) == (dpr, cp)
    assert not (bb.with_cls_token or bb.final_norm or bb.use_rel_pos or bb.freeze_patch_embed)
    assert (bb.init_cfg.checkpoint, bb.init_cfg.prefix) == (init, 'backbone.')
    assert cfg.get('load_from') is None
    # detectron2 SFP (2, 1, 0.5) + LastLevelMaxPool -> p3..p6, then detrex's ChannelMapper
    sfp, mapper = model.neck
    assert (sfp.type, sfp.in_channels, sfp.out_channels, sfp.scale_factors, sfp.num_outs,
            sfp.norm_cfg.type) == ('SimpleFeaturePyramid', 768 if 'base' in arch else 1024,
                                   256, (2.0, 1.0, 0.5), 4, 'LN2d')
    assert (mapper.type, mapper.kernel_size, mapper.bias, mapper.act_cfg, mapper.norm_cfg,
            mapper.num_outs) == ('ChannelMapper', 1, True, None,
                                 dict(type='GN', num_groups=32), 4)
    enc, dec = model.encoder, model.decoder
    assert (enc.num_layers, dec.num_layers) == (6, 6)
    assert enc.layer_cfg.ffn_cfg.feedforward_channels == 2048 == \
        dec.layer_cfg.ffn_cfg.feedforward_channels
    assert enc.layer_cfg.self_attn_cfg.dropout == 0.0 == dec.layer_cfg.ffn_cfg.ffn_drop
    pos = model.positional_encoding
    assert (pos.num_feats, pos.temperature, pos.offset, pos.normalize) == (128, 10000, -0.5, True)
    head = model.bbox_head
    assert (head.type, head.num_classes) == ('DINOHead', classes)
    assert (head.loss_cls.type, head.loss_cls.alpha, head.loss_cls.gamma,
            head.loss_bbox.loss_weight, head.loss_iou.loss_weight) == \
        ('FocalLoss', 0.25, 2.0, 5.0, 2.0)
    assert [c.weight for c in model.train_cfg.assigner.match_costs] == [2.0, 5.0, 2.0]
    assert (model.dn_cfg.label_noise_scale, model.dn_cfg.box_noise_scale,
            model.dn_cfg.group_cfg.num_dn_queries) == (0.5, 1.0, 100)
    assert model.test_cfg.max_per_img == 300
    pre = model.data_preprocessor
    assert pre.test_pad_size == (size, size) and pre.batch_augments[0].size == (size, size)
    opt = cfg.optim_wrapper
    assert (opt.type, opt.optimizer.type, opt.optimizer.weight_decay, opt.clip_grad) == \
        ('OptimWrapper', 'AdamW', 1e-4, dict(max_norm=0.1, norm_type=2))
    if opt_kind == 'lrd':
        assert opt.optimizer.lr == 1e-4 and opt.constructor == \
            'EVALayerDecayOptimWrapperConstructor'
        assert opt.paramwise_cfg == dict(layer_decay_rate=lrd, no_decay_1d=False)
    else:
        assert opt.optimizer.lr == 2e-4 and 'constructor' not in opt
        assert {k: v.lr_mult for k, v in opt.paramwise_cfg.custom_keys.items()} == \
            {'backbone.': 0.1, 'neck.0.': 0.1, 'sampling_offsets': 0.1,
             'reference_points': 0.1}
    # 12 epochs at batch 16: 90k iterations, x0.1 at 11 epochs, no warmup
    assert cfg.train_dataloader.batch_size == 1 and cfg.auto_scale_lr.base_batch_size == 16
    assert cfg.train_cfg.max_iters == 90000 and len(cfg.param_scheduler) == 1
    step = cfg.param_scheduler[0]
    assert (step.type, step.milestones, step.gamma) == ('MultiStepLR', [82500], 0.1)
    pipe = {t.type: t for t in cfg.train_pipeline}
    assert pipe['RandomResize'].scale == (size, size) and \
        pipe['RandomResize'].ratio_range == (0.1, 2.0) and \
        pipe['RandomCrop'].crop_size == (size, size)
    assert not pipe['LoadAnnotations'].with_mask
    if classes == 1203:
        assert cfg.train_dataloader.dataset.type == 'ClassBalancedDataset'
        assert cfg.test_evaluator.type == 'EVALVISMetric' and \
            cfg.test_evaluator.metric == ['bbox']
    else:
        assert cfg.test_evaluator.type == 'CocoMetric' and cfg.test_evaluator.metric == 'bbox'


def _optimizer_lrs(model, cfg):
    from mmengine.optim import build_optim_wrapper
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lrs = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            lrs[id(p)] = (group['lr'], group['weight_decay'])
    return {n: lrs[id(p)] for n, p in model.named_parameters()}


@pytest.mark.parametrize('row', RECIPES[:2], ids=[r[0] for r in RECIPES[:2]])
def test_dino_eva02_learning_rates(row):
    """B: detectron2 get_vit_lr_decay_rate (embeddings 0.7^13, block k 0.7^(12-k), pyramid,
    transformer and heads 1); L: 2e-5 for every detectron2 ``backbone`` parameter (ViT and
    pyramid) and the sampling offsets, 2e-4 for the rest. wd 1e-4 everywhere."""
    import projects.eva.detection  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    cfg = _cfg(row[0])
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'), torch.device('meta'):
        model = MODELS.build(cfg.model)
    lrs = _optimizer_lrs(model, cfg)
    assert {wd for _, wd in lrs.values()} == {1e-4}
    if row[-1][0] == 'lrd':
        expect = {'backbone.patch_embed.proj.weight': 1e-4 * 0.7 ** 13,
                  'backbone.blocks.0.mlp.w3.bias': 1e-4 * 0.7 ** 12,
                  'backbone.blocks.11.attn.proj.weight': 1e-4 * 0.7 ** 1,
                  'neck.0.lateral_convs.0.conv.weight': 1e-4,
                  'encoder.layers.0.self_attn.sampling_offsets.weight': 1e-4,
                  'bbox_head.cls_branches.6.weight': 1e-4}
    else:
        expect = {'backbone.patch_embed.proj.weight': 2e-5,
                  'backbone.blocks.23.attn.proj.weight': 2e-5,
                  'neck.0.fpn_convs.2.conv.weight': 2e-5,
                  'neck.1.convs.0.conv.weight': 2e-4,
                  'encoder.layers.0.self_attn.sampling_offsets.weight': 2e-5,
                  'decoder.layers.5.cross_attn.sampling_offsets.bias': 2e-5,
                  'decoder.layers.5.cross_attn.attention_weights.weight': 2e-4,
                  'query_embedding.weight': 2e-4, 'bbox_head.cls_branches.6.weight': 2e-4}
    for name, lr in expect.items():
        assert lrs[name][0] == pytest.approx(lr, rel=1e-9), name


@pytest.mark.parametrize('row', RECIPES, ids=[r[0] for r in RECIPES])
def test_dino_eva02_builds_and_runs_on_meta(row):
    """The whole detector at its real size on the meta device: the pyramid gives p3..p6 (256
    channels) at the training size, and the parameter count is the released model's."""
    import projects.eva.detection  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    name, size = row[0], row[2]
    cfg = _cfg(name)
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'), torch.device('meta'):
        model = MODELS.build(cfg.model)
        outs = model.extract_feat(torch.empty(1, 3, size, size))
    assert [tuple(o.shape) for o in outs] == [(1, 256, size // s, size // s)
                                             for s in (8, 16, 32, 64)]
    assert len(model.bbox_head.cls_branches) == 7 and \
        model.bbox_head.cls_branches[0].out_features == row[7]
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]


# counted from the built models; the B/L ViTs are the det ViTs of test_configs_eva02_dense
PARAMS = {RECIPES[0][0]: 108_113_356, RECIPES[1][0]: 326_734_604,
          RECIPES[2][0]: 108_113_356, RECIPES[3][0]: 326_734_604,
          RECIPES[4][0]: 326_734_604, RECIPES[5][0]: 329_042_369}
