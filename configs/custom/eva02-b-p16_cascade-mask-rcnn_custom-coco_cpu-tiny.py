# The guide's detection recipe (eva02-b-p16_cascade-mask-rcnn_custom-coco.py) shrunk to run on
# a laptop CPU in about a minute (docs/custom_data.md, "Try it on a CPU first"): the same
# EVA-02 blocks 4 deep and 96 wide at 128 px (windows of 4x4 tokens, 2 global blocks), the
# real pyramid and Cascade Mask R-CNN heads at 32 channels, from scratch, fp32, 40 iterations
# on generated shapes:
#   python -m projects.eva.demo.guide_data detection data/guide_coco
#   python tools/train.py configs/custom/eva02-b-p16_cascade-mask-rcnn_custom-coco_cpu-tiny.py
_base_ = '{{$EVA_CONFIGS:..}}/custom/eva02-b-p16_cascade-mask-rcnn_custom-coco.py'

classes = ('circle', 'square', 'triangle')
data_root = 'data/guide_coco/'
train_ann, val_ann = 'annotations/instances_train.json', 'annotations/instances_val.json'
max_iters, warmup_iters = 40, 10
size, ch = 128, 32

model = dict(
    data_preprocessor=dict(batch_augments=[dict(type='BatchFixedSizePad', size=(size, size),
                                                pad_mask=True)], test_pad_size=(size, size)),
    backbone=dict(arch=dict(_delete_=True, embed_dims=96, num_layers=4, num_heads=3,
                            feedforward_channels=256, mlp_type='swiglu', sub_ln=True,
                            rope=True),
                  img_size=size, window_size=4, global_block_indices=(1, 3),
                  drop_path_rate=0.0, with_cp=False, init_cfg=None),
    neck=dict(in_channels=96, out_channels=ch),
    rpn_head=dict(in_channels=ch, feat_channels=ch, anchor_generator=dict(scales=[4])),
    train_cfg=dict(rpn_proposal=dict(nms_pre=200, max_per_img=32),
                   rcnn=[dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou,
                                            neg_iou_thr=iou, min_pos_iou=iou,
                                            match_low_quality=False, ignore_iof_thr=-1),
                              sampler=dict(type='RandomSampler', num=16, pos_fraction=0.25,
                                           neg_pos_ub=-1, add_gt_as_proposals=True),
                              mask_size=28, pos_weight=-1, debug=False)
                         for iou in (0.5, 0.6, 0.7)]),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=32), rcnn=dict(max_per_img=10)),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=ch), mask_roi_extractor=dict(out_channels=ch),
        bbox_head=[dict(head, num_classes=len(classes), in_channels=ch, conv_out_channels=ch,
                        fc_out_channels=64) for head in _base_.model.roi_head.bbox_head],
        mask_head=dict(num_classes=len(classes), in_channels=ch, conv_out_channels=ch)))
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     constructor='EVALayerDecayOptimWrapperConstructor',
                     optimizer=dict(type='AdamW', lr=3e-3, betas=(0.9, 0.999), weight_decay=0.1),
                     paramwise_cfg=dict(layer_decay_rate=0.9, no_decay_1d=False),
                     clip_grad=dict(max_norm=10.0))
train_pipeline = [
    dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=(size, size), ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=(size, size),
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)), dict(type='PackDetInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile'), dict(type='Resize', scale=(size, size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor'))]
metainfo = dict(classes=classes)
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file=train_ann,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file=val_ann,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + val_ann)
test_evaluator = val_evaluator
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, gamma=0.1,
         milestones=[max_iters * 8 // 10, max_iters * 9 // 10])]
default_hooks = dict(checkpoint=dict(interval=max_iters), logger=dict(interval=10))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
