# EVA-02-L LVIS v1 system-level model from Objects365 (eva2_o365_to_lvis/eva2_o365_to_lvis_
# cascade_mask_rcnn_vitdet_l_8attn_1536_lrd0p8.py; released `eva02_L_lvis_sys_o365.pth`: box AP
# 65.2 / mask AP 57.3): from `eva02_L_in21k_to_o365.pth` (no COCO images in its pretraining),
# the O365 -> COCO recipe (16x16 windows, drop path 0.3, batch 64, lr 4e-5, constant after a 1 %
# warmup, EMA 0.9999 evaluated) on LVIS with the LVIS heads, 70k iterations. Evaluated as the
# README: soft-NMS + maskness, score threshold 0.02, up to 1000 detections per image in the metric.
_base_ = './eva02-l-p16_cascade-mask-rcnn_win32-lsj-1536_128xb1-40k_lvis.py'

load_from = 'checkpoints/eva02/eva02_L_in21k_to_o365_mm.pth'
model = dict(backbone=dict(window_size=16, drop_path_rate=0.3, init_cfg=None))
optim_wrapper = dict(optimizer=dict(lr=4e-5))
auto_scale_lr = dict(base_batch_size=64)
max_iters = 70000
train_cfg = dict(max_iters=max_iters, val_interval=5000)
param_scheduler = {{_base_.schedules.const70k}}
default_hooks = dict(checkpoint=dict(interval=5000))
custom_hooks = [dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=1e-4,
                     update_buffers=True, priority=49)]
val_evaluator = dict(max_dets_per_image=1000)
test_evaluator = val_evaluator
