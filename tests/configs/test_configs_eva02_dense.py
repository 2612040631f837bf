"""EVA-02 detection and segmentation recipes carry the official numbers
(eva02_reference.md 6 and 7; EVA-02/det/projects/ViTDet/configs/eva2_*, EVA-02/seg/configs/
eva02/upernet/*), and their models have the exact official sizes (built on the meta device)."""
import os.path as osp

import pytest
import torch
from parsed_configs import parsed_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET = 'detection/'
SEG = 'segmentation/'


def _cfg(name):
    return parsed_config(name)


# ------------------------------------------------------------------ detection (section 6)
GLOBAL = {'b4': (2, 5, 8, 11), 'l4': (5, 11, 17, 23), 'b6': (1, 3, 5, 7, 9, 11),
          'l8': (2, 5, 8, 11, 14, 17, 20, 23)}
B_IN21K = 'checkpoints/eva02/eva02_B_pt_in21k_p14to16_mm.pth'
L_IN21K = 'checkpoints/eva02/eva02_L_pt_in21k_p14to16_mm.pth'
L_M38M = 'checkpoints/eva02/eva02_L_pt_m38m_p14to16_mm.pth'
# config, arch, size, global blocks, window, dpr, act-ckpt, batch, iters, lr, lrd,
# schedule (warmup, milestones or None = constant), init (backbone weights or load_from), data
DET_RECIPES = [
    ('eva02-b-p16_cascade-mask-rcnn_lsj-1024_128xb1-60k_coco.py', 'eva02-base', 1024, 'b4',
     16, 0.1, False, 128, 60000, 5e-5, 0.7, (1000, [48000, 54000]), B_IN21K, 'coco'),
    ('eva02-l-p16_cascade-mask-rcnn_lsj-1024_144xb1-60k_coco.py', 'eva02-large', 1024, 'l4',
     16, 0.4, False, 144, 60000, 6e-5, 0.8, (1000, [48000, 54000]), L_M38M, 'coco'),
    ('eva02-b-p16_cascade-mask-rcnn_win32-lsj-1536_128xb1-60k_coco.py', 'eva02-base', 1536,
     'b6', 32, 0.1, False, 128, 60000, 5e-5, 0.7, (1000, [48000, 54000]), B_IN21K, 'coco'),
    ('eva02-l-p16_cascade-mask-rcnn_win32-lsj-1536_128xb1-60k_coco.py', 'eva02-large', 1536,
     'l8', 32, 0.4, True, 128, 60000, 5e-5, 0.8, (1000, [48000, 54000]), L_M38M, 'coco'),
    ('eva02-b-p16_cascade-mask-rcnn_lsj-1024_128xb1-50k_lvis.py', 'eva02-base', 1024, 'b4',
     16, 0.1, False, 128, 50000, 1e-4, 0.7, (1000, [40000, 45000]), B_IN21K, 'lvis'),
    ('eva02-l-p16_cascade-mask-rcnn_lsj-1024_128xb1-40k_lvis.py', 'eva02-large', 1024, 'l4',
     16, 0.4, False, 128, 40000, 1e-4, 0.8, (1000, [32000, 36000]), L_IN21K, 'lvis'),
    ('eva02-l-p16_cascade-mask-rcnn_win32-lsj-1536_128xb1-40k_lvis.py', 'eva02-large', 1536,
     'l8', 32, 0.4, True, 128, 40000, 1e-4, 0.8, (1000, [32000, 36000]), L_IN21K, 'lvis'),
    ('eva02-l-p16_cascade-rcnn_lsj-1536_160xb1-400k_objects365.py', 'eva02-large', 1536, 'l8',
     16, 0.4, False, 160, 400000, 6e-5, 0.8, (5000, [320000, 360000]), L_M38M, 'o365'),
    ('eva02-l-p16_o365-pre_cascade-mask-rcnn_lsj-1536_64xb1-40k_coco.py', 'eva02-large', 1536,
     'l8', 16, 0.3, True, 64, 40000, 4e-5, 0.8, (400, None),
     'checkpoints/eva02/eva02_L_m38m_to_o365_mm.pth', 'coco'),
    ('eva02-l-p16_o365-pre_cascade-mask-rcnn_lsj-1536_64xb1-70k_lvis.py', 'eva02-large', 1536,
     'l8', 16, 0.3, True, 64, 70000, 4e-5, 0.8, (700, None),
     'checkpoints/eva02/eva02_L_in21k_to_o365_mm.pth', 'lvis'),
]
SYSTEM = [n for n, *_ in DET_RECIPES if 'win32' in n or 'o365-pre' in n]


def test_every_eva02_dense_config_is_in_a_table():
    """A new eva02-* det/seg config must get its recipe row here (or be an eval variant)."""
    import glob
    shipped = {osp.basename(p) for task in ('detection', 'segmentation')
               for p in glob.glob(osp.join(ROOT, 'configs', task, 'eva02-*.py'))}
    tabled = {r[0] for r in DET_RECIPES} | set(SEG_RECIPES) | set(MASKNESS)
    assert shipped == tabled, shipped ^ tabled


@pytest.mark.parametrize('row', DET_RECIPES, ids=[r[0] for r in DET_RECIPES])
def test_eva02_detection_recipes(row):
    """Common to every run: ViTDet Cascade Mask R-CNN as EVA-01 (SFP with LN, p2-p6, 256 ch;
    4conv1fc LN box heads, IoU 0.5/0.6/0.7, class-agnostic), EVAViT patch 16 with no cls token,
    no final norm, no rel-pos, a trainable patch embedding, pos table at the 14x14 pretrain grid
    resized per forward, square pad = img size; ImageNet mean/std; AdamW (0.9, 0.999) with
    wd 0.1 on every parameter, layer decay, AMP; LSJ (0.1, 2.0)."""
    (name, arch, size, glb, win, dpr, cp, batch, iters, lr, lrd, (warmup, steps), init,
     data) = row
    cfg = _cfg(DET + name)
    bb, model = cfg.model.backbone, cfg.model
    assert (bb.type, bb.arch, bb.patch_size, bb.img_size, bb.pos_embed_size) == \
        ('mmpretrain.EVAViT', arch, 16, size, 224)
    assert tuple(bb.global_block_indices) == GLOBAL[glb] and bb.window_size == win
    assert (bb.drop_path_rate, bb.with_cp) == (dpr, cp)
    assert not (bb.with_cls_token or bb.final_norm or bb.use_rel_pos or bb.freeze_patch_embed)
    assert bb.out_type == 'featmap'
    if init.endswith('to_o365_mm.pth'):  # the whole O365 detector
        assert cfg.load_from == init and bb.init_cfg is None
    else:
        assert bb.init_cfg.checkpoint == init and bb.init_cfg.prefix == 'backbone.'
        assert cfg.get('load_from') is None
    neck = model.neck
    assert (neck.type, neck.in_channels, neck.out_channels, neck.scale_factors,
            neck.num_outs, neck.norm_cfg.type) == \
        ('SimpleFeaturePyramid', 768 if 'base' in arch else 1024, 256, (4.0, 2.0, 1.0, 0.5),
         5, 'LN2d')
    pre = model.data_preprocessor
    assert pre.mean == [123.675, 116.28, 103.53] and pre.test_pad_size == (size, size)
    assert pre.batch_augments[0].size == (size, size)
    roi = model.roi_head
    assert [s.assigner.pos_iou_thr for s in model.train_cfg.rcnn] == [0.5, 0.6, 0.7]
    assert all(h.type == 'Shared4Conv1FCBBoxHead' and h.reg_class_agnostic and
               h.norm_cfg.type == 'LN2d' for h in roi.bbox_head)
    assert [h.bbox_coder.target_stds[0] for h in roi.bbox_head] == [0.1, 0.05, 1 / 30]
    opt = cfg.optim_wrapper
    assert (opt.type, opt.optimizer.type, opt.optimizer.lr, opt.optimizer.betas,
            opt.optimizer.weight_decay) == ('AmpOptimWrapper', 'AdamW', lr, (0.9, 0.999), 0.1)
    assert opt.constructor == 'EVALayerDecayOptimWrapperConstructor'
    assert opt.paramwise_cfg == dict(layer_decay_rate=lrd, no_decay_1d=False)  # wd on all
    assert cfg.train_dataloader.batch_size == 1 and cfg.auto_scale_lr.base_batch_size == batch
    assert f'_{batch}xb1-' in name and cfg.train_cfg.max_iters == iters
    warm = cfg.param_scheduler[0]
    assert (warm.type, warm.start_factor, warm.begin, warm.end) == ('LinearLR', 0.001, 0, warmup)
    if steps is None:  # O365 -> *: constant after the warmup (1 % of the run)
        assert len(cfg.param_scheduler) == 1 and warmup == iters // 100
    else:
        step = cfg.param_scheduler[1]
        assert (step.type, step.milestones, step.gamma, step.end) == \
            ('MultiStepLR', steps, 0.1, iters)
    ema = [h for h in cfg.get('custom_hooks', []) if h.type == 'EMAHook']
    if 'o365-pre' in name:  # detectron2 model_ema decay 0.9999 on params + buffers, evaluated
        assert len(ema) == 1 and ema[0].momentum == 1e-4 and ema[0].update_buffers
        assert ema[0].ema_type == 'ExponentialMovingAverage'
    else:
        assert not ema
    train = cfg.train_dataloader.dataset
    pipe = {t.type: t for t in cfg.train_pipeline}
    assert pipe['RandomResize'].scale == (size, size) and pipe['RandomResize'].ratio_range == \
        (0.1, 2.0) and pipe['RandomCrop'].crop_size == (size, size)
    test = {t.type: t for t in cfg.test_dataloader.dataset.pipeline}
    assert test['Resize'].scale == (size, size) and test['Resize'].keep_ratio
    rcnn = model.test_cfg.rcnn
    if data == 'lvis':
        assert train.type == 'ClassBalancedDataset' and train.oversample_thr == 0.001
        assert train.dataset.pipeline == cfg.train_pipeline
        assert train.dataset.ann_file == 'annotations/lvis_v1_train.json'
        fed = roi.bbox_head[0].loss_cls
        assert (fed.type, fed.num_fed_classes, fed.freq_weight_power, fed.num_classes) == \
            ('FederatedSigmoidCELoss', 50, 0.5, 1203)
        assert all(h.loss_cls == fed for h in roi.bbox_head)
        assert rcnn.score_thr == 0.02  # kept in the sys evaluation (no override for LVIS)
        assert cfg.test_evaluator.type == 'EVALVISMetric'
        assert cfg.test_evaluator.max_dets_per_image == (1000 if 'o365-pre' in name else 300)
    elif data == 'o365':
        assert roi.mask_head is None and roi.mask_roi_extractor is None
        assert all(h.num_classes == 365 for h in roi.bbox_head)
        assert train.type == 'ConcatDataset'  # objects365 train + val
        assert [d.ann_file for d in train.datasets] == [
            'annotations/zhiyuan_objv2_train.json', 'annotations/zhiyuan_objv2_val.json']
        assert all(d.pipeline == cfg.train_pipeline for d in train.datasets)
        assert 'with_mask' in pipe['LoadAnnotations'] and not pipe['LoadAnnotations'].with_mask
    else:
        assert train.ann_file == 'annotations/instances_train2017.json'
        assert all(h.num_classes == 80 for h in roi.bbox_head)
        assert cfg.test_evaluator.metric == ['bbox', 'segm']
    if name in SYSTEM:  # README sys evaluation: class-wise linear soft-NMS 0.6, no top-k
        assert rcnn.nms == dict(type='soft_nms', iou_threshold=0.6, method='linear',
                                sigma=0.5, min_score=1e-3)
        assert rcnn.max_per_img == -1
        if data == 'coco':
            assert rcnn.score_thr == 0.0  # override_score_thresh=0.0
    else:  # detectron2 defaults: NMS 0.5, score 0.05 (COCO) / 0.02 (LVIS), top 100 / 300
        assert rcnn.nms == dict(type='nms', iou_threshold=0.5)
        assert (rcnn.score_thr, rcnn.max_per_img) == \
            ((0.02, 300) if data == 'lvis' else (0.05, 100))
    # maskness: in the LVIS sys evaluations (box and mask from one run), and for COCO only in
    # the separate mask evaluation (below), which the README runs with maskness_thresh=0.5
    assert roi.get('maskness_thresh') == (0.5 if name in SYSTEM and data == 'lvis' else None)


MASKNESS = {
    'eva02-b-p16_cascade-mask-rcnn_win32-lsj-1536_128xb1-60k_coco_test-maskness.py':
        'eva02-b-p16_cascade-mask-rcnn_win32-lsj-1536_128xb1-60k_coco.py',
    'eva02-l-p16_cascade-mask-rcnn_win32-lsj-1536_128xb1-60k_coco_test-maskness.py':
        'eva02-l-p16_cascade-mask-rcnn_win32-lsj-1536_128xb1-60k_coco.py',
    'eva02-l-p16_o365-pre_cascade-mask-rcnn_lsj-1536_64xb1-40k_coco_test-maskness.py':
        'eva02-l-p16_o365-pre_cascade-mask-rcnn_lsj-1536_64xb1-40k_coco.py',
}


@pytest.mark.parametrize('name', sorted(MASKNESS))
def test_eva02_coco_mask_evaluations_add_only_maskness(name):
    cfg, train = _cfg(DET + name), _cfg(DET + MASKNESS[name])
    assert cfg.model.roi_head.maskness_thresh == 0.5
    cfg.model.roi_head.maskness_thresh = None
    assert cfg.model == train.model and cfg.test_dataloader == train.test_dataloader
    assert cfg.get('load_from') is None


# det ViT without cls / final norm / neck (pos 197: the table keeps its cls slot's size at
# 1 + 14^2 in the official files; here the cls slot is dropped: 196 positions)
DET_VIT = {'eva02-base': 85_848_576 - 768, 'eva02-large': 303_388_608 - 1024}


@pytest.mark.parametrize('name', [DET_RECIPES[0][0], DET_RECIPES[3][0]])
def test_eva02_det_backbone_has_the_official_size(name):
    from mmpretrain.registry import MODELS
    bb = _cfg(DET + name).model.backbone
    bb.init_cfg = None
    with torch.device('meta'):
        vit = MODELS.build(bb)
    assert sum(p.numel() for p in vit.parameters()) == DET_VIT[bb.arch]
    keys = set(vit.state_dict())
    assert not any('rope' in k or 'rel_pos' in k or k.startswith(('norm.', 'cls_token'))
                   for k in keys)
    assert tuple(vit.pos_embed.shape) == (1, 196, vit.embed_dims)


# ------------------------------------------------------------------ segmentation (section 7)
# config: arch, crop, batch (GPUs x per GPU), iters, lr, lrd, dpr, head channels, aux channels,
# out_indices, slide stride, init, ms test (TTA) shipped
SEG_RECIPES = {
    'eva02-b-p16_upernet_4xb8-60k_ade20k-512x512.py':
        ('eva02-base', 512, (4, 8), 60000, 6e-5, 0.85, 0.15, 768, 256, [3, 5, 7, 11], 341,
         B_IN21K, True),
    'eva02-l-p16_upernet_8xb2-80k_ade20k-512x512.py':
        ('eva02-large', 512, (8, 2), 80000, 4e-5, 0.9, 0.2, 1024, 256, [7, 11, 15, 23], 341,
         L_M38M, True),
    'eva02-l-p16_upernet_8xb2-80k_ade20k-640x640.py':
        ('eva02-large', 640, (8, 2), 80000, 4e-5, 0.9, 0.2, 1536, 1536, [7, 11, 15, 23], 426,
         L_M38M, False),
}


@pytest.mark.parametrize('name', sorted(SEG_RECIPES))
def test_eva02_segmentation_recipes(name):
    """Common: mmseg UPerHead (pool scales 1/2/3/6, dropout 0.1, SyncBN, CE) + FCN aux head on
    the stride-16 map (1 conv, weight 0.4), Feature2Pyramid (4, 2, 1, 0.5; SyncBN), EVAViT with
    the cls token and no final norm, ImageNet mean/std; AdamW (0.9, 0.999) wd 0.05 with the
    official layer-decay rule (pos_embed / cls_token decayed), fp16, no clipping; warmup 1500
    (1e-6) x poly(1) to 0; Resize (4S, S) x [0.5, 2], crop S (cat max 0.75), flip,
    PhotoMetricDistortion; slide test."""
    (arch, crop, (gpus, per_gpu), iters, lr, lrd, dpr, ch, aux_ch, outs, stride, init,
     ms) = SEG_RECIPES[name]
    cfg = _cfg(SEG + name)
    m = cfg.model
    bb = m.backbone
    assert (bb.type, bb.arch, bb.patch_size, tuple(bb.img_size), bb.out_indices) == \
        ('mmpretrain.EVAViT', arch, 16, (crop, crop), outs)
    assert bb.with_cls_token and not bb.final_norm and bb.out_type == 'featmap'
    assert bb.drop_path_rate == dpr and not bb.get('with_cp') and not bb.get('use_rel_pos')
    assert bb.init_cfg.checkpoint == init and bb.init_cfg.prefix == 'backbone.'
    dim = 768 if 'base' in arch else 1024
    assert (m.neck.type, m.neck.embed_dim, m.neck.rescales, m.neck.get('norm_cfg')) == \
        ('Feature2Pyramid', dim, [4, 2, 1, 0.5], None)  # mmseg's default: SyncBN
    head, aux = m.decode_head, m.auxiliary_head
    assert (head.type, head.in_channels, head.in_index, head.pool_scales, head.channels,
            head.dropout_ratio, head.num_classes, head.norm_cfg.type) == \
        ('UPerHead', [dim] * 4, [0, 1, 2, 3], (1, 2, 3, 6), ch, 0.1, 150, 'SyncBN')
    assert (aux.type, aux.in_channels, aux.in_index, aux.channels, aux.num_convs,
            aux.concat_input, aux.num_classes, aux.loss_decode.loss_weight) == \
        ('FCNHead', dim, 2, aux_ch, 1, False, 150, 0.4)
    assert head.loss_decode.type == 'CrossEntropyLoss' and not head.loss_decode.use_sigmoid
    assert m.type == 'EVAEncoderDecoder'
    assert m.test_cfg == dict(mode='slide', crop_size=(crop, crop), stride=(stride, stride))
    assert m.data_preprocessor.mean == [123.675, 116.28, 103.53]
    assert m.data_preprocessor.size == (crop, crop)
    opt = cfg.optim_wrapper
    assert (opt.type, opt.optimizer.type, opt.optimizer.lr, opt.optimizer.betas,
            opt.optimizer.weight_decay) == ('AmpOptimWrapper', 'AdamW', lr, (0.9, 0.999), 0.05)
    assert opt.get('clip_grad') is None
    assert opt.constructor == 'EVALayerDecayOptimWrapperConstructor'
    assert opt.paramwise_cfg == dict(layer_decay_rate=lrd, no_decay_1d=True)  # no no_decay_keys
    warm, poly = cfg.param_scheduler
    assert (warm.type, warm.start_factor, warm.end, poly.type, poly.power, poly.eta_min,
            poly.end) == ('LinearLR', 1e-6, 1501, 'PolyLR', 1.0, 0.0, iters + 1)
    assert cfg.train_cfg.max_iters == iters
    assert cfg.train_dataloader.batch_size == per_gpu and f'_{gpus}xb{per_gpu}-' in name
    assert cfg.auto_scale_lr.base_batch_size == gpus * per_gpu
    train = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert train['RandomResize'].scale == (4 * crop, crop)
    assert train['RandomResize'].ratio_range == (0.5, 2.0)
    assert (train['RandomCrop'].crop_size, train['RandomCrop'].cat_max_ratio) == \
        ((crop, crop), 0.75)
    assert 'PhotoMetricDistortion' in train and train['RandomFlip'].prob == 0.5
    assert train['CheckedLoadAnnotations'].reduce_zero_label
    test = {t.type: t for t in cfg.test_dataloader.dataset.pipeline}
    assert test['Resize'].scale == (4 * crop, crop) and test['Resize'].keep_ratio
    assert cfg.train_dataloader.dataset.type == 'ADE20KDataset'
    if ms:  # official ms eval: SETR_Resize short side max(r, 1) * crop, r in 0.5..1.75, flip
        views = cfg.tta_pipeline[1].transforms
        assert [t.scale[1] for t in views[0]] == [512, 512, 512, 640, 768, 896]
        assert [t.prob for t in views[1]] == [0., 1.]
    else:
        assert cfg.get('tta_pipeline') is None


# seg ViT with the cls token (pos 1 + (S/16)^2), no final norm; the fpn1..4 (here the neck)
SEG_VIT = {('eva02-base', 512): 86_485_248, ('eva02-large', 512): 304_237_504,
           ('eva02-large', 640): 304_827_328}
FPN = {'eva02-base': 7_081_728, 'eva02-large': 12_588_032}


@pytest.mark.parametrize('name', sorted(SEG_RECIPES))
def test_eva02_seg_backbone_and_neck_have_the_official_sizes(name):
    import projects.eva.segmentation  # noqa: F401
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    cfg = _cfg(SEG + name)
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmseg'), torch.device('meta'):
        model = MODELS.build(cfg.model)
    arch, crop = SEG_RECIPES[name][:2]
    assert sum(p.numel() for p in model.backbone.parameters()) == SEG_VIT[(arch, crop)]
    assert sum(p.numel() for p in model.neck.parameters()) == FPN[arch]
    assert tuple(model.backbone.pos_embed.shape[:2]) == (1, 1 + (crop // 16) ** 2)
    assert model.backbone.norm is None and model.backbone.cls_token is not None


# ------------------------------------------------------------------ real sizes, meta forward
@pytest.mark.parametrize('row', DET_RECIPES, ids=[r[0] for r in DET_RECIPES])
def test_eva02_det_backbone_and_pyramid_run_at_their_real_size_on_meta(row):
    """The real backbone + pyramid at the training size (windows 16 or 32 tile the 64x64 /
    96x96 grid, global RoPE over the whole map, pos 14x14 resized), on the meta device: p2..p6
    at strides 4..64, 256 channels."""
    import projects.eva.detection  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    name, size = row[0], row[2]
    cfg = _cfg(DET + name).model
    cfg.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'), torch.device('meta'):
        backbone, neck = MODELS.build(cfg.backbone), MODELS.build(cfg.neck)
        outs = neck(backbone(torch.empty(1, 3, size, size)))
    assert [tuple(o.shape) for o in outs] == [(1, 256, size // s, size // s)
                                             for s in (4, 8, 16, 32, 64)]


@pytest.mark.parametrize('name', sorted(SEG_RECIPES))
def test_eva02_upernet_runs_at_its_real_size_on_meta(name):
    """Backbone (cls token + 32x32 / 40x40 grid), Feature2Pyramid and both heads at the crop
    size on the meta device: 4 maps of D channels at strides 4..32, 150-way logits at 1/4
    (UPerHead) and 1/16 (auxiliary FCN)."""
    import projects.eva.segmentation  # noqa: F401
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    cfg = _cfg(SEG + name)
    cfg.model.backbone.init_cfg = None
    crop = SEG_RECIPES[name][1]
    with DefaultScope.overwrite_default_scope('mmseg'), torch.device('meta'):
        model = MODELS.build(cfg.model).eval()  # (SyncBN: running statistics)
        feats = model.extract_feat(torch.empty(1, 3, crop, crop))
        logits = model.decode_head(feats)
        aux = model.auxiliary_head(feats)
    dim = model.backbone.embed_dims
    assert [tuple(f.shape) for f in feats] == [(1, dim, crop // s, crop // s)
                                              for s in (4, 8, 16, 32)]
    assert tuple(logits.shape) == (1, 150, crop // 4, crop // 4)
    assert tuple(aux.shape) == (1, 150, crop // 16, crop // 16)  # FCN on the stride-16 map
