# Instance-segmentation evaluation of `eva02_L_coco_seg_sys_o365.pth` (EMA weights, soft-NMS +
# maskness 0.5): mask AP 55.4.
_base_ = './eva02-l-p16_o365-pre_cascade-mask-rcnn_lsj-1536_64xb1-40k_coco.py'

load_from = None
model = dict(roi_head=dict(maskness_thresh=0.5))
