# EVA-02-B COCO system-level model without Objects365 (eva2_coco_cascade_mask_rcnn_vitdet_b_
# 6attn_win32_1536_lrd0p7.py; released `eva02_B_coco_sys.pth`: box AP 58.9 with this config's
# soft-NMS evaluation, mask AP 50.7 with `..._test-maskness.py`): LSJ 1536 (square pad 1536),
# 32x32 windows, 6 global blocks 1/3/5/7/9/11, otherwise the baseline's recipe.
_base_ = './eva02-b-p16_cascade-mask-rcnn_lsj-1024_128xb1-60k_coco.py'

train_size = 1536
image_size = 1536
model = dict(
    data_preprocessor=_base_.lsj.mask1536.pad,
    backbone=dict(img_size=train_size, window_size=32, global_block_indices=(1, 3, 5, 7, 9, 11)),
    test_cfg=dict(rcnn=dict(score_thr=0.0, max_per_img=-1, nms={{_base_.soft_nms}})))
train_pipeline = {{_base_.lsj.mask1536.train}}
test_pipeline = {{_base_.lsj.mask1536.test}}
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
