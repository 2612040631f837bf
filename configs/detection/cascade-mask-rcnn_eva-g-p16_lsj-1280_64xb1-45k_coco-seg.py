# EVA-01 COCO instance segmentation: the same training as coco-det (45k iterations; the
# released `eva_coco_seg.pth` is the final 45k checkpoint), evaluated with soft-NMS and
# maskness rescoring: mask AP 55.0 on val2017 (55.5 test-dev) at 1536.
_base_ = './cascade-mask-rcnn_eva-g-p16_lsj-1280_64xb1-45k_coco-det.py'

model = dict(roi_head=dict(maskness_thresh=0.5))
