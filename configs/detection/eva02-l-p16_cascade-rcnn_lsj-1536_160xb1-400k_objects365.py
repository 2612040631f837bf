# EVA-02-L Objects365 v2 intermediate fine-tuning (eva2_o365/eva2_o365_cascade_mask_rcnn_vitdet_
# l_8attn_1536_lrd0p8.py; released `eva02_L_m38m_to_o365.pth` from the Merged-38M MIM weights
# and `eva02_L_in21k_to_o365.pth` from the IN-21K ones, for the COCO and LVIS fine-tunes).
# Boxes only (no mask head): Cascade R-CNN, 365 classes, LSJ 1536 with 16x16 windows and
# 8 global blocks, no activation checkpointing, train + val images (detectron2
# objects365_trainval; boxes are not recomputed after cropping, they need no masks), batch 160,
# lr 6e-5, layer decay 0.8, 400k iterations (warmup 5k, x0.1 at 320k, x0.01 at 360k).
_base_ = './eva02-l-p16_cascade-mask-rcnn_lsj-1024_144xb1-60k_coco.py'

train_size = 1536
image_size = 1536
num_classes = 365
data_root = 'data/Objects365/Obj365_v2/'
model = dict(
    data_preprocessor=dict(
        pad_mask=False, test_pad_size=(train_size, train_size),
        batch_augments=[dict(type='BatchFixedSizePad', size=(train_size, train_size))]),
    backbone=dict(img_size=train_size, global_block_indices=(2, 5, 8, 11, 14, 17, 20, 23)),
    roi_head=dict(
        bbox_head=[  # the list replaces the base's: the three 365-way stage heads in full
            dict(type='Shared4Conv1FCBBoxHead', in_channels=256, conv_out_channels=256,
                 fc_out_channels=1024, roi_feat_size=7, num_classes=num_classes,
                 norm_cfg=dict(type='LN2d', eps=1e-6), reg_class_agnostic=True,
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                 target_stds=stds),
                 loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                 loss_bbox=dict(type='L1Loss', loss_weight=1.0))
            for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                         [1 / 30, 1 / 30, 1 / 15, 1 / 15])],
        mask_roi_extractor=None, mask_head=None))
train_pipeline = {{_base_.lsj.box1536.train}}
test_pipeline = {{_base_.lsj.box1536.test}}
_o365 = dict(type='CheckedObjects365V2Dataset', data_root=data_root,
             filter_cfg=dict(filter_empty_gt=True, min_size=32),
             on_bad_annotation={{_base_.on_bad_annotation}}, pipeline=train_pipeline)
train_dataloader = dict(dataset=dict(
    _delete_=True, type='ConcatDataset', datasets=[
        dict(_o365, ann_file='annotations/zhiyuan_objv2_train.json',
             data_prefix=dict(img='train/')),
        dict(_o365, ann_file='annotations/zhiyuan_objv2_val.json',
             data_prefix=dict(img='val/'))]))
val_dataloader = dict(dataset=dict(
    type='CheckedObjects365V2Dataset', data_root=data_root,
    ann_file='annotations/zhiyuan_objv2_val.json', data_prefix=dict(img='val/'),
    pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/zhiyuan_objv2_val.json', metric='bbox')
test_evaluator = val_evaluator
tta_model = None
tta_pipeline = None

auto_scale_lr = dict(base_batch_size=160)
max_iters = 400000
train_cfg = dict(max_iters=max_iters, val_interval=10000)
param_scheduler = {{_base_.schedules.steps400k}}
default_hooks = dict(checkpoint=dict(interval=2500))
