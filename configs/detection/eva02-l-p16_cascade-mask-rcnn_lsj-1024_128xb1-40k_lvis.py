# EVA-02-L LVIS v1 baseline (eva2_lvis_cascade_mask_rcnn_vitdet_l_4attn_1024_lrd0p8.py;
# released `eva02_L_lvis_bsl.pth`: box AP 55.3 / mask AP 48.6): `eva02-large` from the IN-21K MIM
# weights, global blocks 5/11/17/23, drop path 0.4, layer decay 0.8, lr 1e-4, 40k iterations.
#   python tools/model_converters/eva_to_mm.py eva02_L_pt_in21k_p14.pt \
#       checkpoints/eva02/eva02_L_pt_in21k_p14to16_mm.pth --patch-size 16
_base_ = './eva02-b-p16_cascade-mask-rcnn_lsj-1024_128xb1-50k_lvis.py'

model = dict(
    backbone=dict(arch='eva02-large', global_block_indices=(5, 11, 17, 23), drop_path_rate=0.4,
                  init_cfg=dict(checkpoint='checkpoints/eva02/eva02_L_pt_in21k_p14to16_mm.pth')),
    neck=dict(in_channels=1024))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.8))
max_iters = 40000
train_cfg = dict(max_iters=max_iters)
param_scheduler = {{_base_.schedules.steps40k}}
