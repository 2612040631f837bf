# 1536 evaluation of the LVIS model (EVA-01 LVIS/cascade_mask_rcnn_vitdet_eva_1536.py + the
# README command): score threshold 0.001, 1000 detections per image (box and metric),
# maskness 0.5, BEiT-style rel-pos resizing; no soft-NMS for LVIS.
_base_ = './cascade-mask-rcnn_eva-g-p16_lsj-1280_64xb1-75k_lvis.py'

image_size = 1536
load_from = None
model = dict(
    data_preprocessor=dict(test_pad_size=(image_size, image_size)),
    backbone=dict(rel_pos_interp='beit'),
    roi_head=dict(maskness_thresh=0.5),
    test_cfg=dict(rcnn=dict(score_thr=0.001, max_per_img=1000)))
test_pipeline = {{_base_.lsj.mask1536.test}}
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(max_dets_per_image=1000)
test_evaluator = val_evaluator
