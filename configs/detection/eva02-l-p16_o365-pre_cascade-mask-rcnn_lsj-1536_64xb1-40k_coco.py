# EVA-02-L COCO system-level model from Objects365 (eva2_o365_to_coco/eva2_o365_to_coco_cascade_
# mask_rcnn_vitdet_l_8attn_1536_lrd0p8.py): from `eva02_L_m38m_to_o365.pth`, LSJ 1536, 16x16
# windows, 8 global blocks, activation checkpointing, drop path 0.3, batch 64, lr 4e-5, layer
# decay 0.8, 40k iterations at a constant lr after a 1 % warmup, and an EMA of the weights
# (decay 0.9999 per iteration, parameters and buffers: detectron2's model_ema) which is what
# validation, test and the saved `state_dict` use (`use_ema_weights_for_eval_only=True`).
# Released `eva02_L_coco_det_sys_o365.pth`: box AP 64.1 with this config's soft-NMS evaluation;
# `eva02_L_coco_seg_sys_o365.pth` (another checkpoint of the same run): mask AP 55.4 with
# `..._test-maskness.py`.
_base_ = './eva02-l-p16_cascade-mask-rcnn_win32-lsj-1536_128xb1-60k_coco.py'

load_from = 'checkpoints/eva02/eva02_L_m38m_to_o365_mm.pth'  # the O365 detector, converted
model = dict(backbone=dict(window_size=16, drop_path_rate=0.3, init_cfg=None))
optim_wrapper = dict(optimizer=dict(lr=4e-5))
auto_scale_lr = dict(base_batch_size=64)
max_iters = 40000
train_cfg = dict(max_iters=max_iters)
param_scheduler = {{_base_.schedules.const40k}}
# mmengine's EMA: averaged = (1 - momentum) * averaged + momentum * weights, so decay 0.9999
custom_hooks = [dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=1e-4,
                     update_buffers=True, priority=49)]
