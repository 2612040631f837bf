# Instance-segmentation evaluation of `eva02_B_coco_sys.pth` (README: the same soft-NMS command
# plus `maskness_thresh=0.5`): mask AP 50.7. Scores are rescored by maskness, so use the
# training config's evaluation for the box AP (58.9).
_base_ = './eva02-b-p16_cascade-mask-rcnn_win32-lsj-1536_128xb1-60k_coco.py'

model = dict(roi_head=dict(maskness_thresh=0.5))
