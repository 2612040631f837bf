# EVA-01 LVIS v1: EVA-g Cascade Mask R-CNN from the Objects365 model, LSJ 1280, 75k iters at
# batch 64, lr 2e-4 (as written in the official config; 8x the COCO lr), warmup 250,
# x0.1 at 70k and 75k; repeat-factor sampling (threshold 0.001); sigmoid CE with the federated
# loss (50 classes, weights image_count^0.5); 300 detections per image, score threshold 0.02.
# Released `eva_lvis.pth`: box AP 62.2 / mask AP 55.0 on val with the 1536 evaluation.
# Build the class-frequency file once (small):
#   python -m projects.eva.detection.lvis cat-info data/lvis_v1/annotations/lvis_v1_train.json \
#       data/lvis_v1/annotations/lvis_v1_train_cat_info.json
_base_ = ['./_base_/eva-g_cascade-mask-rcnn_lsj-1280.py', './_base_/lsj-1280_coco-instance.py']

load_from = 'checkpoints/eva/eva_o365_mm.pth'
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
    test_cfg=dict(rcnn=dict(score_thr=0.02, nms=dict(type='nms', iou_threshold=0.5),
                            max_per_img=300)))

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

optim_wrapper = dict(optimizer=dict(lr=2e-4))
max_iters = 75001
train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[70000, 75000],
         gamma=0.1),
]
tta_model = dict(tta_cfg=dict(max_per_img=300))
