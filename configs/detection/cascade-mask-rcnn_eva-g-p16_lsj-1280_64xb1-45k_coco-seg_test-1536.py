# 1536 single-scale evaluation of the coco-seg model (EVA-01 cascade_mask_rcnn_vitdet_eva_1536.py):
# the coco-det 1536 evaluation with the coco-seg model's maskness 0.5.
_base_ = './cascade-mask-rcnn_eva-g-p16_lsj-1280_64xb1-45k_coco-det_test-1536.py'

model = dict(roi_head=dict(maskness_thresh=0.5))
