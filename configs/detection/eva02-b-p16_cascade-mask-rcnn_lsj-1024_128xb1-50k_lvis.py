# EVA-02-B LVIS v1 baseline (eva2_mim_to_lvis/eva2_lvis_cascade_mask_rcnn_vitdet_b_4attn_1024_
# lrd0p7.py; released `eva02_B_lvis_bsl.pth`: box AP 47.1 / mask AP 41.4 on val). The COCO
# baseline's model and recipe with EVA-01's LVIS setup: 1203 classes, repeat-factor sampling
# (threshold 0.001), sigmoid CE + federated loss (50 classes, weights image_count^0.5), score
# threshold 0.02, 300 detections per image (box head and metric); lr 1e-4, 50k iterations.
# LVIS models start from the IN-21K MIM weights (no COCO images in their pretraining).
# Build the class-frequency file once:
#   python -m projects.eva.detection.lvis cat-info data/lvis_v1/annotations/lvis_v1_train.json \
#       data/lvis_v1/annotations/lvis_v1_train_cat_info.json
_base_ = './eva02-b-p16_cascade-mask-rcnn_lsj-1024_128xb1-60k_coco.py'

lvis_root = 'data/lvis_v1/'
num_classes = 1203
fed_loss = dict(type='FederatedSigmoidCELoss', num_classes=num_classes, use_fed_loss=True,
                class_freq=lvis_root + 'annotations/lvis_v1_train_cat_info.json',
                freq_weight_power=0.5, num_fed_classes=50)
norm_cfg = dict(type='LN2d', eps=1e-6)
# lists replace the base's: the three stage heads in full (sigmoid/federated classifier)
model = dict(
    roi_head=dict(
        bbox_head=[
            dict(type='Shared4Conv1FCBBoxHead', in_channels=256, conv_out_channels=256,
                 fc_out_channels=1024, roi_feat_size=7, num_classes=num_classes,
                 norm_cfg=norm_cfg, reg_class_agnostic=True,
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                 target_stds=stds),
                 loss_cls=fed_loss, loss_bbox=dict(type='L1Loss', loss_weight=1.0))
            for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                         [1 / 30, 1 / 30, 1 / 15, 1 / 15])],
        mask_head=dict(num_classes=num_classes)),
    test_cfg=dict(rcnn=dict(score_thr=0.02, max_per_img=300)))

train_dataloader = dict(dataset=dict(
    _delete_=True, type='ClassBalancedDataset', oversample_thr=1e-3,
    dataset=dict(type='CheckedLVISV1Dataset', data_root=lvis_root,
                 ann_file='annotations/lvis_v1_train.json', data_prefix=dict(img=''),
                 on_bad_annotation={{_base_.on_bad_annotation}},
                 filter_cfg=dict(filter_empty_gt=True, min_size=32),
                 pipeline={{_base_.train_pipeline}})))
val_dataloader = dict(dataset=dict(
    type='CheckedLVISV1Dataset', data_root=lvis_root, ann_file='annotations/lvis_v1_val.json',
    data_prefix=dict(img='')))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='EVALVISMetric',
                     ann_file=lvis_root + 'annotations/lvis_v1_val.json',
                     metric=['bbox', 'segm'], max_dets_per_image=300)
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=1e-4))
max_iters = 50000
train_cfg = dict(max_iters=max_iters, val_interval=2500)
param_scheduler = {{_base_.schedules.steps50k}}
default_hooks = dict(checkpoint=dict(interval=2500))
tta_model = dict(tta_cfg=dict(max_per_img=300))
