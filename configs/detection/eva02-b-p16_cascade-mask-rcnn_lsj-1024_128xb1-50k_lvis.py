# EVA-02-B LVIS v1 baseline (eva2_mim_to_lvis/eva2_lvis_cascade_mask_rcnn_vitdet_b_4attn_1024_
# lrd0p7.py; released `eva02_B_lvis_bsl.pth`: box AP 47.1 / mask AP 41.4 on val). The COCO
# baseline's model and recipe with EVA-01's LVIS setup: 1203 classes, repeat-factor sampling
# (threshold 0.001), sigmoid CE + federated loss (50 classes, weights image_count^0.5), score
# threshold 0.02, 300 detections per image (box head and metric); lr 1e-4, 50k iterations.
# LVIS models start from the IN-21K MIM weights (no COCO images in their pretraining).
_base_ = ['./eva02-b-p16_cascade-mask-rcnn_lsj-1024_128xb1-60k_coco.py',
          './_base_/lvis-v1_federated.py']

num_classes = 1203
model = dict(
    roi_head=dict(  # the base's stage heads, 1203-way with the federated loss
        bbox_head=[dict(h, num_classes=num_classes, loss_cls=_base_.fed_loss)
                   for h in _base_.model.roi_head.bbox_head],
        mask_head=dict(num_classes=num_classes)),
    test_cfg=dict(rcnn=dict(score_thr=0.02, max_per_img=300)))
train_dataloader = dict(dataset=dict(_base_.lvis.train, _delete_=True, dataset=dict(
    _base_.lvis.train.dataset, on_bad_annotation=_base_.on_bad_annotation,
    pipeline=_base_.train_pipeline)))
val_dataloader = dict(dataset=_base_.lvis.val)
test_dataloader = val_dataloader
val_evaluator = test_evaluator = dict(_base_.lvis.metric, _delete_=True)

optim_wrapper = dict(optimizer=dict(lr=1e-4))
max_iters = 50000
train_cfg = dict(max_iters=max_iters, val_interval=2500)
param_scheduler = {{_base_.schedules.steps50k}}
default_hooks = dict(checkpoint=dict(interval=2500))
tta_model = dict(tta_cfg=dict(max_per_img=300))
