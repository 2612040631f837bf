# Demo: EVA-01 ViT-Adapter + Mask2Former semantic segmentation, end to end on CPU in minutes.
# The real model (configs/segmentation/_base_/eva-mask2former_vit-g-adapter-p16-896.py:
# EVAViT + EVAAdapter with deform_ratio 0.5, mmseg Mask2FormerHead, layer decay) with its
# sizes overridden: a 4-block 64-wide EVAViT from scratch (no weights can be downloaded
# here), 128 px crops, 16 queries, 3 decoder layers; warmup + poly as the real schedule.
# Data: shapes drawn by projects/eva/demo/synthetic_segmentation.py (tools/demo.py writes
# them), in ADE20K's layout.
_base_ = ['mmseg::_base_/default_runtime.py',
          '../segmentation/_base_/eva-mask2former_vit-g-adapter-p16-896.py']

data_root = 'data/demo/seg_shapes'
crop_size = (128, 128)
classes = ('background', 'circle', 'square', 'triangle')
palette = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200]]
num_classes = len(classes)
dims, num_layers = 64, 4
pretrained = None  # trained from scratch
norm_cfg = dict(type='BN')  # one process: no SyncBN

data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        vit=dict(arch=dict(_delete_=True, embed_dims=dims, num_layers=num_layers, num_heads=4,
                           feedforward_channels=4 * dims),
                 img_size=crop_size[0], drop_path_rate=0.1, with_cp=False, init_cfg=None),
        interaction_indexes=[[i, i] for i in range(num_layers)],
        conv_inplane=16, deform_num_heads=4, drop_path_rate=0.1, norm_cfg=norm_cfg,
        with_cp=False),
    decode_head=dict(
        in_channels=[dims] * 4, feat_channels=dims, out_channels=dims,
        num_classes=num_classes, num_queries=16,
        pixel_decoder=dict(
            encoder=dict(num_layers=2, layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=dims, num_heads=4),
                ffn_cfg=dict(embed_dims=dims, feedforward_channels=2 * dims))),
            positional_encoding=dict(num_feats=dims // 2)),
        positional_encoding=dict(num_feats=dims // 2),
        transformer_decoder=dict(num_layers=3, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=dims, num_heads=4),
            cross_attn_cfg=dict(embed_dims=dims, num_heads=4),
            ffn_cfg=dict(embed_dims=dims, feedforward_channels=2 * dims))),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1]),
        train_cfg=dict(num_points=1024)),
    test_cfg=dict(_delete_=True, mode='whole'))

dataset = dict(type='BaseSegDataset', data_root=data_root,
               metainfo=dict(classes=classes, palette=palette),
               img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=False)
train_pipeline = {{_base_.seg_pipelines.shapes128.train}}
eval_pipeline = {{_base_.seg_pipelines.shapes128.test}}
# tools/test.py CONFIG CKPT --tta: 3 scales x flip, logits averaged (mmseg's SegTTAModel)
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale=(int(512 * r), int(128 * r)), keep_ratio=True)
         for r in (0.75, 1.0, 1.25)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='CheckedLoadAnnotations', reduce_zero_label=False)],
        [dict(type='PackSegInputs')]]),
]
train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**dataset, pipeline=train_pipeline,
                 data_prefix=dict(img_path='images/training',
                                  seg_map_path='annotations/training')))
val_dataloader = dict(
    train_dataloader, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, pipeline=eval_pipeline, data_prefix=dict(
        img_path='images/validation', seg_map_path='annotations/validation')))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

max_iters = 160
optim_wrapper = dict(optimizer=dict(lr=1e-3),
                     paramwise_cfg=dict(_delete_=True, layer_decay_rate=0.95, no_decay_1d=True))
param_scheduler = {{_base_.schedules.poly160_w20}}  # EVA-01's warmup x poly
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
custom_hooks = [dict(type='ValBeforeTrainHook')]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1),
    visualization=dict(type='SegVisualizationHook', draw=False))
# the same table twice on one machine (README, Demo results): seeded, deterministic kernels
randomness = dict(seed=0, deterministic=True)
