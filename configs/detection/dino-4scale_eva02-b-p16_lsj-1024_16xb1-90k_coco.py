# DINO with EVA-02-B (detrex projects/dino_eva/configs/dino-eva-02/
# dino_eva_02_vitdet_b_4attn_1024_lrd0p7_4scale_12ep.py; released
# `dino_eva_02_in21k_pretrain_vitdet_b_4attn_1024_lrd0p7_4scale_12ep.pth`: box AP 55.8 on val2017).
# mmdet's DINO (deformable encoder/decoder, contrastive denoising queries, focal loss,
# Hungarian matching, two-stage box refinement) on the EVA-02-B ViTDet backbone of the cascade
# baseline (window 16, global blocks 2/5/8/11, RoPE per window; drop path 0.1). The pyramid is
# detrex's: the simple feature pyramid at strides 8/16/32 + a max-pooled 64 (scale factors
# 2/1/0.5, LN, LastLevelMaxPool), then detrex's ChannelMapper (1x1 conv with bias + GroupNorm 32
# per level). Transformer as detrex dino_r50: 6+6 layers, 256 wide, FFN 2048, no dropout, 900
# queries, 100 denoising queries (label noise 0.5, box noise 1.0), sine positions with
# temperature 10000 and offset -0.5 (mmdet's DINO uses 20 / 0). Loss weights: focal 1, L1 5,
# GIoU 2 (matching costs 2 / 5 / 2). 12 epochs = 90k iterations at batch 16, lr x0.1 at 82.5k
# (11 epochs), no warmup; AdamW lr 1e-4, wd 1e-4 on every parameter, layer decay 0.7 over the
# ViT (neck, transformer, heads 1), grad clip 0.1 (L2), fp32 (detrex amp off). 300 boxes per image.
# LSJ at 1024 (flip, scale 0.1-2.0, crop), square pad 1024 in training and test.
_base_ = './eva02-b-p16_cascade-mask-rcnn_lsj-1024_128xb1-60k_coco.py'

num_classes = 80
embed_dims = 256
num_levels = 4
channel_mapper = dict(type='ChannelMapper', in_channels=[embed_dims] * num_levels, kernel_size=1,
                      out_channels=embed_dims, bias=True, act_cfg=None,
                      norm_cfg=dict(type='GN', num_groups=32), num_outs=num_levels)
model = dict(
    _delete_=True,  # the cascade's heads go; backbone and preprocessor are kept from the base
    type='DINO', num_queries=900, with_box_refine=True, as_two_stage=True,
    num_feature_levels=num_levels,
    data_preprocessor=dict(
        type='EVADetDataPreprocessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=1,
        batch_augments=[dict(type='BatchFixedSizePad', size=(1024, 1024))],
        test_pad_size=(1024, 1024)),
    backbone={{_base_.model.backbone}},
    # detectron2 SimpleFeaturePyramid(scale_factors=(2, 1, 0.5), top_block=LastLevelMaxPool)
    # then detrex ChannelMapper(kernel_size=1, GroupNorm(32)): a list of necks runs in order
    neck=[dict(type='SimpleFeaturePyramid', in_channels=768, out_channels=embed_dims,
               scale_factors=(2.0, 1.0, 0.5), num_outs=num_levels,
               norm_cfg=dict(type='LN2d', eps=1e-6)),
          channel_mapper],
    encoder=dict(num_layers=6, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=embed_dims, num_levels=num_levels, dropout=0.0),
        ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=2048, ffn_drop=0.0))),
    decoder=dict(num_layers=6, return_intermediate=True, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, dropout=0.0),
        cross_attn_cfg=dict(embed_dims=embed_dims, num_levels=num_levels, dropout=0.0),
        ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=2048, ffn_drop=0.0)),
        post_norm_cfg=None),
    positional_encoding=dict(num_feats=embed_dims // 2, normalize=True, offset=-0.5,
                             temperature=10000),
    bbox_head=dict(
        type='DINOHead', num_classes=num_classes, sync_cls_avg_factor=True,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0)),
    dn_cfg=dict(label_noise_scale=0.5, box_noise_scale=1.0,
                group_cfg=dict(dynamic=True, num_groups=None, num_dn_queries=100)),
    train_cfg=dict(assigner=dict(type='HungarianAssigner', match_costs=[
        dict(type='FocalLossCost', weight=2.0),
        dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
        dict(type='IoUCost', iou_mode='giou', weight=2.0)])),
    test_cfg=dict(max_per_img=300))

optim_wrapper = dict(
    _delete_=True, type='OptimWrapper', constructor='EVALayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4),
    paramwise_cfg=dict(layer_decay_rate=0.7, no_decay_1d=False),
    clip_grad=dict(max_norm=0.1, norm_type=2))
max_iters = 90000
train_cfg = dict(max_iters=max_iters)
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
                        milestones=[82500], gamma=0.1)]
auto_scale_lr = dict(base_batch_size=16)

train_pipeline = {{_base_.lsj.box1024.train}}
test_pipeline = {{_base_.lsj.box1024.test}}
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(metric='bbox')
test_evaluator = val_evaluator
# no TTA recipe: detrex evaluates DINO single-scale (the cascade base's TTA merges masks)
tta_pipeline = None
tta_model = None
