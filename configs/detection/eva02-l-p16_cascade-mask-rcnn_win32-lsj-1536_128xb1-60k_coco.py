# EVA-02-L COCO system-level model without Objects365 (eva2_coco_cascade_mask_rcnn_vitdet_l_
# 8attn_win32_1536_lrd0p8.py; released `eva02_L_coco_sys.pth`: box AP 62.3 with this config's
# soft-NMS evaluation, mask AP 53.8 with `..._test-maskness.py`): LSJ 1536, 32x32 windows,
# 8 global blocks 2/5/.../23, activation checkpointing, batch 128, lr 5e-5, layer decay 0.8.
_base_ = './eva02-l-p16_cascade-mask-rcnn_lsj-1024_144xb1-60k_coco.py'

train_size = 1536
image_size = 1536
model = dict(
    data_preprocessor=_base_.lsj.mask1536.pad,
    backbone=dict(img_size=train_size, window_size=32,
                  global_block_indices=(2, 5, 8, 11, 14, 17, 20, 23), with_cp=True),
    test_cfg=dict(rcnn=dict(score_thr=0.0, max_per_img=-1, nms={{_base_.soft_nms}})))
optim_wrapper = dict(optimizer=dict(lr=5e-5))
auto_scale_lr = dict(base_batch_size=128)
train_pipeline = {{_base_.lsj.mask1536.train}}
test_pipeline = {{_base_.lsj.mask1536.test}}
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
