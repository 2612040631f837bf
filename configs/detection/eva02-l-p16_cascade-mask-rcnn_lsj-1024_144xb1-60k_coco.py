# EVA-02-L COCO baseline (eva2_coco_cascade_mask_rcnn_vitdet_l_4attn_1024_lrd0p8.py; released
# `eva02_L_coco_bsl.pth`: box AP 59.2 / mask AP 50.8): `eva02-large` from the Merged-38M MIM
# weights (`eva02_L_pt_m38m_p14to16`), global blocks 5/11/17/23, window 16, drop path 0.4, no
# activation checkpointing, batch 144, lr 6e-5, layer decay 0.8, 60k iterations.
_base_ = './eva02-b-p16_cascade-mask-rcnn_lsj-1024_128xb1-60k_coco.py'

model = dict(
    backbone=dict(arch='eva02-large', global_block_indices=(5, 11, 17, 23), drop_path_rate=0.4,
                  init_cfg=dict(checkpoint='checkpoints/eva02/eva02_L_pt_m38m_p14to16_mm.pth')),
    neck=dict(in_channels=1024))
optim_wrapper = dict(optimizer=dict(lr=6e-5), paramwise_cfg=dict(layer_decay_rate=0.8))
auto_scale_lr = dict(base_batch_size=144)
