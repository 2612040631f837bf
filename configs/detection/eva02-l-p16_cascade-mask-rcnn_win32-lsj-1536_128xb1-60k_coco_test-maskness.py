# Instance-segmentation evaluation of `eva02_L_coco_sys.pth` (soft-NMS + maskness 0.5): mask AP
# 53.8; the box AP (62.3) comes from the training config's evaluation (no maskness).
_base_ = './eva02-l-p16_cascade-mask-rcnn_win32-lsj-1536_128xb1-60k_coco.py'

model = dict(roi_head=dict(maskness_thresh=0.5))
