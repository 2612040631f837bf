# EVA-02-L Objects365 v2 intermediate fine-tuning (eva2_o365/eva2_o365_cascade_mask_rcnn_vitdet_
# l_8attn_1536_lrd0p8.py; released `eva02_L_m38m_to_o365.pth` from the Merged-38M MIM weights
# and `eva02_L_in21k_to_o365.pth` from the IN-21K ones, for the COCO and LVIS fine-tunes).
# Boxes only (no mask head): Cascade R-CNN, 365 classes, LSJ 1536 with 16x16 windows and
# 8 global blocks, no activation checkpointing, train + val images (detectron2
# objects365_trainval; boxes are not recomputed after cropping, they need no masks), batch 160,
# lr 6e-5, layer decay 0.8, 400k iterations (warmup 5k, x0.1 at 320k, x0.01 at 360k).
_base_ = ['./eva02-l-p16_cascade-mask-rcnn_lsj-1024_144xb1-60k_coco.py',
          './_base_/objects365-v2.py']

train_size = 1536
image_size = 1536
num_classes = 365
data_root = _base_.o365.root
model = dict(
    data_preprocessor=_base_.lsj.box1536.pad,
    backbone=dict(img_size=train_size, global_block_indices=(2, 5, 8, 11, 14, 17, 20, 23)),
    roi_head=dict(
        # the base's three stage heads, 365-way
        bbox_head=[dict(h, num_classes=num_classes) for h in _base_.model.roi_head.bbox_head],
        mask_roi_extractor=None, mask_head=None))
train_pipeline = {{_base_.lsj.box1536.train}}
test_pipeline = {{_base_.lsj.box1536.test}}
_o365 = dict(**_base_.o365.dataset, filter_cfg=dict(filter_empty_gt=True, min_size=32),
             on_bad_annotation={{_base_.on_bad_annotation}}, pipeline=train_pipeline)
train_dataloader = dict(dataset=dict(
    _delete_=True, type='ConcatDataset',
    datasets=[dict(_o365, **_base_.o365.train), dict(_o365, **_base_.o365.val)]))
val_dataloader = dict(dataset=dict(**_base_.o365.dataset, **_base_.o365.val,
                                   pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = test_evaluator = _base_.o365.metric
tta_model = tta_pipeline = None

auto_scale_lr = dict(base_batch_size=160)
max_iters = 400000
train_cfg = dict(max_iters=max_iters, val_interval=10000)
param_scheduler = {{_base_.schedules.steps400k}}
default_hooks = dict(checkpoint=dict(interval=2500))
