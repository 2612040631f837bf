# Demo: the EVA-01 detector end to end on CPU in minutes. The real model
# (configs/detection/_base_/eva-g_cascade-mask-rcnn_lsj-1280.py) shrunk: a 4-block 96-wide
# EVAViT at 128 px / patch 16 (8x8 tokens) with window attention (window 4) and global blocks
# 1 and 3, decomposed rel-pos, the simple feature pyramid (32 ch), the 3-stage cascade with
# LayerNorm 4conv1fc box heads and 4-conv mask heads, LSJ, AdamW + layer decay.
# Trained from scratch (no weights can be downloaded) on generated shapes with masks
# (configs/demo/_base_/shapes-128_detection.py). Sized for a
# 2-core CPU: thin heads (32 ch), few proposals and RoIs, one evaluation at the end.
# The pyramid is the real one, with LN2d after every conv. (An earlier version dropped it
# because the box classifiers never left the background prior; the cause was not
# LayerNorm but LN2d returning a channels-last view that mmcv's roi_align read as NCHW:
# docs/mmcv_ops_audit.md.)
_base_ = ['../detection/_base_/eva-g_cascade-mask-rcnn_lsj-1280.py',
          './_base_/shapes-128_detection.py']

data_root = {{_base_.shapes.mask.data_root}}
image_size = 128
num_classes = 3
ch = 32
norm_cfg = dict(type='LN2d', eps=1e-6)
model = dict(
    data_preprocessor=dict(
        batch_augments=[dict(type='BatchFixedSizePad', size=(image_size, image_size),
                             pad_mask=True)],
        test_pad_size=(image_size, image_size)),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=96, num_layers=4, num_heads=3,
                  feedforward_channels=384),
        img_size=image_size, pos_embed_size=image_size, window_size=4,
        global_block_indices=(1, 3), drop_path_rate=0.05, with_cp=False,
        freeze_patch_embed=False, init_cfg=None),
    neck=dict(in_channels=96, out_channels=ch),
    rpn_head=dict(in_channels=ch, feat_channels=ch,
                  anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=ch),
        bbox_head=[  # lists replace the base's: the three stage heads in full
            dict(type='Shared4Conv1FCBBoxHead', in_channels=ch, conv_out_channels=ch,
                 fc_out_channels=64, roi_feat_size=7, num_classes=num_classes,
                 norm_cfg=norm_cfg, reg_class_agnostic=True,
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                 target_stds=stds),
                 loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                 loss_bbox=dict(type='L1Loss', loss_weight=1.0))
            for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                         [1 / 30, 1 / 30, 1 / 15, 1 / 15])],
        mask_roi_extractor=dict(out_channels=ch),
        mask_head=dict(in_channels=ch, conv_out_channels=ch, num_classes=num_classes)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=200, max_per_img=32),
        rcnn=[dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou,
                                 min_pos_iou=iou, match_low_quality=False, ignore_iof_thr=-1),
                   sampler=dict(type='RandomSampler', num=16, pos_fraction=0.25,
                                neg_pos_ub=-1, add_gt_as_proposals=True),
                   mask_size=28, pos_weight=-1, debug=False) for iou in (0.5, 0.6, 0.7)]),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=32), rcnn=dict(max_per_img=10)))

train_pipeline = {{_base_.shapes.mask.train_pipeline}}
test_pipeline = {{_base_.shapes.mask.test_pipeline}}
metainfo = {{_base_.shapes.mask.metainfo}}
train_dataloader = {{_base_.shapes.mask.train_dataloader}}
val_dataloader = {{_base_.shapes.mask.val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.shapes.mask.val_evaluator}}
test_evaluator = val_evaluator

# no layer decay floor problems with 4 blocks: 0.9^5 = 0.59 for the embeddings
optim_wrapper = dict(
    type='OptimWrapper', _delete_=True,
    constructor='EVALayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=3e-3, betas=(0.9, 0.999), weight_decay=0.1),
    paramwise_cfg=dict(layer_decay_rate=0.9, no_decay_1d=False),
    clip_grad=dict(max_norm=10.0))
max_iters = 450
# a single evaluation, after the last iteration
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=40),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.8), int(max_iters * 0.93)], gamma=0.1),
]
default_hooks = dict(logger=dict(type='LoggerHook', interval=25),
                     checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                     interval=max_iters, max_keep_ckpts=1),
                     visualization=dict(type='DetVisualizationHook', draw=False))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
# the same table twice on one machine (README, Demo results): seeded, deterministic kernels
randomness = dict(seed=0, deterministic=True)
# flip x 3 scales with box and mask merging: tools/test.py CONFIG CKPT --tta
tta_model = dict(type='EVADetTTAModel',
                 tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=10))
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale=(s, s), keep_ratio=True) for s in (112, 128, 144)],
        [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
        [dict(type='LoadAnnotations', with_bbox=True, with_mask=True)],
        [dict(type='PackDetInputs',
              meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                         'flip', 'flip_direction'))]]),
]
