# EVA-01 ViTDet-style Cascade Mask R-CNN (EVA-01/det/projects/ViTDet/configs/COCO/
# cascade_mask_rcnn_vitdet_eva.py): EVA-g/16 with window attention (16) and 10 global blocks,
# decomposed rel-pos, simple feature pyramid, 3-stage cascade (IoU 0.5/0.6/0.7), 4conv1fc box
# heads and 4-conv mask heads with LayerNorm, class-agnostic regression, LSJ at 1280.
_base_ = ['mmdet::_base_/default_runtime.py']
custom_imports = dict(imports=['projects.eva.detection'], allow_failed_imports=False)

train_size = 1280  # LSJ crop and square pad; the rel-pos tables are sized for it
num_classes = 80
norm_cfg = dict(type='LN2d', eps=1e-6)
# ImageNet mean/std in RGB (det, seg and video use ImageNet statistics, not CLIP's)
data_preprocessor = dict(
    type='EVADetDataPreprocessor',
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
    pad_mask=True, pad_size_divisor=32,
    # square_pad: every image is padded to train_size x train_size, in training and test
    batch_augments=[dict(type='BatchFixedSizePad', size=(train_size, train_size),
                         pad_mask=True)],
    test_pad_size=(train_size, train_size))


def _stage_head(stds):
    return dict(
        type='Shared4Conv1FCBBoxHead', in_channels=256, conv_out_channels=256,
        fc_out_channels=1024, roi_feat_size=7, num_classes=num_classes, norm_cfg=norm_cfg,
        reg_class_agnostic=True,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                        target_stds=stds),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0))  # detectron2 smooth_l1_beta=0


def _stage_train_cfg(iou):
    return dict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou,
                      min_pos_iou=iou, match_low_quality=False, ignore_iof_thr=-1),
        sampler=dict(type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1,
                     add_gt_as_proposals=True),
        mask_size=28, pos_weight=-1, debug=False)


model = dict(
    type='CascadeRCNN',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='mmpretrain.EVAViT', arch='giant', img_size=train_size, patch_size=16,
        pos_embed_size=224,  # pos table stays at the 14x14 pretrain grid, resized per forward
        out_type='featmap', final_norm=False, with_cls_token=False,
        window_size=16, global_block_indices=tuple(range(3, 40, 4)), use_rel_pos=True,
        drop_path_rate=0.6, with_cp=True, freeze_patch_embed=True, init_std=0.02,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/eva_psz14to16_mm.pth',
                      prefix='backbone.')),
    neck=dict(type='SimpleFeaturePyramid', in_channels=1408, out_channels=256,
              scale_factors=(4.0, 2.0, 1.0, 0.5), num_outs=5, norm_cfg=norm_cfg),
    rpn_head=dict(
        type='RPNHead', in_channels=256, feat_channels=256, num_convs=2,
        anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                              strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='EVACascadeRoIHead', num_stages=3, stage_loss_weights=[1, 1, 1],
        score_average='prob', stage_grad_scale=True, maskness_thresh=None,
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0, aligned=True),
            out_channels=256, featmap_strides=[4, 8, 16, 32]),
        # Box2BoxTransform weights (10,10,5,5) / (20,20,10,10) / (30,30,15,15)
        bbox_head=[_stage_head([0.1, 0.1, 0.2, 0.2]),
                   _stage_head([0.05, 0.05, 0.1, 0.1]),
                   _stage_head([1 / 30, 1 / 30, 1 / 15, 1 / 15])],
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0, aligned=True),
            out_channels=256, featmap_strides=[4, 8, 16, 32]),
        mask_head=dict(type='FCNMaskHead', num_convs=4, in_channels=256, conv_out_channels=256,
                       num_classes=num_classes, norm_cfg=norm_cfg,
                       loss_mask=dict(type='CrossEntropyLoss', use_mask=True,
                                      loss_weight=1.0))),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                          min_pos_iou=0.3, match_low_quality=True, ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
                         add_gt_as_proposals=False),
            allowed_border=-1, pos_weight=-1, debug=False),
        rpn_proposal=dict(nms_pre=2000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
                          min_bbox_size=0),
        rcnn=[_stage_train_cfg(0.5), _stage_train_cfg(0.6), _stage_train_cfg(0.7)]),
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
                 min_bbox_size=0),
        rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100,
                  mask_thr_binary=0.5)))

# AdamW, wd 0.1 on every parameter (norms, biases, pos_embed, rel-pos included), layer decay
# 0.9 over the 40 blocks (embeddings 0.9^41, block k 0.9^(40-k), neck/heads 1), AMP.
optim_wrapper = dict(
    type='AmpOptimWrapper', loss_scale='dynamic',
    constructor='EVALayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=2.5e-5, betas=(0.9, 0.999), weight_decay=0.1),
    paramwise_cfg=dict(layer_decay_rate=0.9, no_decay_1d=False))

# COCO schedule: 45k iterations at batch 64, warmup 500 (factor 0.001), x0.1 at 40k and 44999
max_iters = 45000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[40000, max_iters - 1], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000,
                                     max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=64)
