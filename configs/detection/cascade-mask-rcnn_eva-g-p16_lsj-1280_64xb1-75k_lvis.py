# EVA-01 LVIS v1: EVA-g Cascade Mask R-CNN from the Objects365 model, LSJ 1280, 75k iters at
# batch 64, lr 2e-4 (as written in the official config; 8x the COCO lr), warmup 250,
# x0.1 at 70k and 75k; repeat-factor sampling (threshold 0.001); sigmoid CE with the federated
# loss (50 classes, weights image_count^0.5); 300 detections per image, score threshold 0.02.
# Released `eva_lvis.pth`: box AP 62.2 / mask AP 55.0 on val with the 1536 evaluation.
_base_ = ['./_base_/eva-g_cascade-mask-rcnn_lsj-1280.py', './_base_/lsj-1280_coco-instance.py',
          './_base_/lvis-v1_federated.py']

load_from = 'checkpoints/eva/eva_o365_mm.pth'
num_classes = 1203
model = dict(
    roi_head=dict(  # the base's stage heads, 1203-way with the federated loss
        bbox_head=[dict(h, num_classes=num_classes, loss_cls=_base_.fed_loss)
                   for h in _base_.model.roi_head.bbox_head],
        mask_head=dict(num_classes=num_classes)),
    test_cfg=dict(rcnn=dict(score_thr=0.02, nms=dict(type='nms', iou_threshold=0.5),
                            max_per_img=300)))
train_dataloader = dict(dataset=dict(_base_.lvis.train, _delete_=True, dataset=dict(
    _base_.lvis.train.dataset, on_bad_annotation=_base_.on_bad_annotation,
    pipeline=_base_.train_pipeline)))
val_dataloader = dict(dataset=_base_.lvis.val)
test_dataloader = val_dataloader
val_evaluator = test_evaluator = dict(_base_.lvis.metric, _delete_=True)

optim_wrapper = dict(optimizer=dict(lr=2e-4))
max_iters = 75001
train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[70000, 75000],
         gamma=0.1),
]
tta_model = dict(tta_cfg=dict(max_per_img=300))
