# EVA-01 ViTDet-style Cascade Mask R-CNN (EVA-01/det/projects/ViTDet/configs/COCO/
# cascade_mask_rcnn_vitdet_eva.py) on mmdet's Cascade Mask R-CNN, as mmdet's projects/ViTDet
# does for Mask R-CNN: EVA-g/16 with window attention (16) and 10 global blocks, decomposed
# rel-pos, the simple feature pyramid instead of ResNet + FPN; 2-conv RPN, 4conv1fc box heads
# and 4-conv mask heads with LayerNorm, L1 box losses, equal stage weights, LSJ at 1280. The
# cascade's IoU stages, samplers, test thresholds and class-agnostic regression are mmdet's.
_base_ = ['mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
          'mmdet::_base_/default_runtime.py']
custom_imports = dict(imports=['projects.eva.detection'], allow_failed_imports=False)

train_size = 1280  # LSJ crop and square pad; the rel-pos tables are sized for it
num_classes = 80
norm_cfg = dict(type='LN2d', eps=1e-6)


def _stage_head(stds):
    return dict(
        type='Shared4Conv1FCBBoxHead', in_channels=256, conv_out_channels=256,
        fc_out_channels=1024, roi_feat_size=7, num_classes=num_classes, norm_cfg=norm_cfg,
        reg_class_agnostic=True,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                        target_stds=stds),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0))  # detectron2 smooth_l1_beta=0


model = dict(
    # mmdet's ImageNet mean/std in RGB, masks padded; square_pad: every image is padded to
    # train_size x train_size, in training and test
    data_preprocessor=dict(
        type='EVADetDataPreprocessor',
        batch_augments=[dict(type='BatchFixedSizePad', size=(train_size, train_size),
                             pad_mask=True)],
        test_pad_size=(train_size, train_size)),
    backbone=dict(
        _delete_=True,
        type='mmpretrain.EVAViT', arch='giant', img_size=train_size, patch_size=16,
        pos_embed_size=224,  # pos table stays at the 14x14 pretrain grid, resized per forward
        out_type='featmap', final_norm=False, with_cls_token=False,
        window_size=16, global_block_indices=tuple(range(3, 40, 4)), use_rel_pos=True,
        drop_path_rate=0.6, with_cp=True, freeze_patch_embed=True, init_std=0.02,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/eva/eva_psz14to16_mm.pth',
                      prefix='backbone.')),
    neck=dict(_delete_=True, type='SimpleFeaturePyramid', in_channels=1408, out_channels=256,
              scale_factors=(4.0, 2.0, 1.0, 0.5), num_outs=5, norm_cfg=norm_cfg),
    rpn_head=dict(num_convs=2, loss_bbox=dict(_delete_=True, type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='EVACascadeRoIHead', stage_loss_weights=[1, 1, 1],
        score_average='prob', stage_grad_scale=True, maskness_thresh=None,
        bbox_roi_extractor=dict(roi_layer=dict(aligned=True)),
        # Box2BoxTransform weights (10,10,5,5) / (20,20,10,10) / (30,30,15,15)
        bbox_head=[_stage_head([0.1, 0.1, 0.2, 0.2]),
                   _stage_head([0.05, 0.05, 0.1, 0.1]),
                   _stage_head([1 / 30, 1 / 30, 1 / 15, 1 / 15])],
        mask_roi_extractor=dict(roi_layer=dict(aligned=True)),
        mask_head=dict(norm_cfg=norm_cfg)),
    train_cfg=dict(rpn=dict(allowed_border=-1), rpn_proposal=dict(max_per_img=1000)))

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
