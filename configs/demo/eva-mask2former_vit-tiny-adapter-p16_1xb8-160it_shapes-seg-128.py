# Demo: EVA-01 ViT-Adapter + Mask2Former semantic segmentation, end to end on CPU in minutes.
# The same model classes and pipeline as configs/segmentation/ (EVAViT + EVAAdapter with
# deform_ratio 0.5, mmseg Mask2FormerHead, layer decay, warmup + poly), scaled down: a 4-block
# 64-wide EVAViT from scratch (no weights can be downloaded here), 128 px crops, 16 queries,
# 3 decoder layers. Data: shapes drawn by projects/eva/demo/synthetic_segmentation.py
# (tools/demo.py writes them), in ADE20K's layout.
_base_ = 'mmseg::_base_/default_runtime.py'
custom_imports = dict(imports=['projects.eva.segmentation', 'projects.eva.engine'],
                      allow_failed_imports=False)

data_root = 'data/demo/seg_shapes'
crop_size = (128, 128)
classes = ('background', 'circle', 'square', 'triangle')
palette = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200]]
num_classes = len(classes)
dims, num_layers = 64, 4

data_preprocessor = dict(
    type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=crop_size,
    test_cfg=dict(size_divisor=32))
model = dict(
    type='EVAEncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='EVAAdapter',
        vit=dict(type='mmpretrain.EVAViT',
                 arch=dict(embed_dims=dims, num_layers=num_layers, num_heads=4,
                           feedforward_channels=4 * dims),
                 img_size=crop_size[0], patch_size=16, out_type='raw', final_norm=False,
                 drop_path_rate=0.1, init_std=0.02),
        interaction_indexes=[[i, i] for i in range(num_layers)],
        conv_inplane=16, deform_num_heads=4, n_points=4, deform_ratio=0.5, cffn_ratio=0.25,
        drop_path_rate=0.1, norm_cfg=dict(type='BN')),
    decode_head=dict(
        type='Mask2FormerHead',
        in_channels=[dims] * 4, strides=[4, 8, 16, 32],
        feat_channels=dims, out_channels=dims, num_classes=num_classes, num_queries=16,
        num_transformer_feat_level=3, align_corners=False,
        pixel_decoder=dict(
            type='mmdet.MSDeformAttnPixelDecoder', num_outs=3,
            norm_cfg=dict(type='GN', num_groups=32), act_cfg=dict(type='ReLU'),
            encoder=dict(num_layers=2, layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=dims, num_heads=4, num_levels=3, num_points=4,
                                   im2col_step=64, dropout=0.0, batch_first=True,
                                   norm_cfg=None, init_cfg=None),
                ffn_cfg=dict(embed_dims=dims, feedforward_channels=2 * dims, num_fcs=2,
                             ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True))),
                init_cfg=None),
            positional_encoding=dict(num_feats=dims // 2, normalize=True), init_cfg=None),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=dims // 2, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True, num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=dims, num_heads=4, attn_drop=0.0, proj_drop=0.0,
                                   dropout_layer=None, batch_first=True),
                cross_attn_cfg=dict(embed_dims=dims, num_heads=4, attn_drop=0.0, proj_drop=0.0,
                                    dropout_layer=None, batch_first=True),
                ffn_cfg=dict(embed_dims=dims, feedforward_channels=2 * dims, num_fcs=2,
                             act_cfg=dict(type='ReLU', inplace=True), ffn_drop=0.0,
                             dropout_layer=None, add_identity=True)),
            init_cfg=None),
        loss_cls=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
                      reduction='mean', class_weight=[1.0] * num_classes + [0.1]),
        loss_mask=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                       loss_weight=5.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True,
                       reduction='mean', naive_dice=True, eps=1.0, loss_weight=5.0),
        train_cfg=dict(
            num_points=1024, oversample_ratio=3.0, importance_sample_ratio=0.75,
            assigner=dict(type='mmdet.HungarianAssigner', match_costs=[
                dict(type='mmdet.ClassificationCost', weight=2.0),
                dict(type='mmdet.CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                dict(type='mmdet.DiceCost', weight=5.0, pred_act=True, eps=1.0)]),
            sampler=dict(type='mmdet.MaskPseudoSampler'))),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

dataset = dict(type='BaseSegDataset', data_root=data_root,
               metainfo=dict(classes=classes, palette=palette),
               img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=False)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='RandomResize', scale=(512, 128), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
eval_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 128), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='PackSegInputs'),
]
# tools/test.py CONFIG CKPT --tta: 3 scales x flip, logits averaged (mmseg's SegTTAModel)
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale=(int(512 * r), int(128 * r)), keep_ratio=True)
         for r in (0.75, 1.0, 1.25)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadAnnotations', reduce_zero_label=False)],
        [dict(type='PackSegInputs')]]),
]
train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**dataset, pipeline=train_pipeline,
                 data_prefix=dict(img_path='images/training',
                                  seg_map_path='annotations/training')))
val_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, pipeline=eval_pipeline,
                 data_prefix=dict(img_path='images/validation',
                                  seg_map_path='annotations/validation')))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

max_iters = 160
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='EVALayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.95, no_decay_1d=True))
param_scheduler = [  # EVA-01: linear warmup times poly (power 1), both per iteration
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=20 + 1),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=max_iters + 1),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
custom_hooks = [dict(type='ValBeforeTrainHook')]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1),
    visualization=dict(type='SegVisualizationHook', draw=False))
randomness = dict(seed=0)
