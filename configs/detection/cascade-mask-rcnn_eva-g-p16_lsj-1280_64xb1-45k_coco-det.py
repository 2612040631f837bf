# EVA-01 COCO detection: EVA-g Cascade Mask R-CNN, LSJ 1280, 45k iters at batch 64 (64 GPUs x 1),
# initialised from the Objects365 intermediate model. Released `eva_coco_det.pth` is the 35k
# checkpoint of this schedule: box AP 64.2 on val2017 (64.5 in the summary) with the
# 1536 evaluation (..._coco-det_test-1536.py).
_base_ = ['./_base_/eva-g_cascade-mask-rcnn_lsj-1280.py', './_base_/lsj-1280_coco-instance.py']

load_from = 'checkpoints/eva/eva_o365_mm.pth'  # converted eva_o365.pth (docs/detection.md)

# COCO test: linear soft-NMS (IoU 0.6, sigma 0.5, min score 1e-3) with no score threshold
# and no top-k, as the official evaluation command (override_score_thresh=0.0).
model = dict(test_cfg=dict(rcnn=dict(
    score_thr=0.0, max_per_img=-1,
    nms=dict(type='soft_nms', iou_threshold=0.6, method='linear', sigma=0.5, min_score=1e-3))))
