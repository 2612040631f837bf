# EVA-02-L UperNet on ADE20K at 512 (upernet_eva02_large_24_512_slide_80k.py; released
# `eva02_L_ade_seg_upernet_sz512`: 59.8 mIoU single-scale, 60.4 with `tools/test.py --tta`):
# `eva02-large` from the Merged-38M MIM weights, blocks 7/11/15/23 out, drop path 0.2, head
# channels 1024, batch 16 (8 GPUs x 2), lr 4e-5, layer decay 0.9, 80k iterations.
_base_ = './eva02-b-p16_upernet_4xb8-60k_ade20k-512x512.py'

embed_dims = 1024
model = dict(
    backbone=dict(arch='eva02-large', out_indices=[7, 11, 15, 23], drop_path_rate=0.2,
                  init_cfg=dict(checkpoint='checkpoints/eva02/eva02_L_pt_m38m_p14to16_mm.pth')),
    neck=dict(embed_dim=embed_dims),
    decode_head=dict(in_channels=[embed_dims] * 4, channels=1024),
    auxiliary_head=dict(in_channels=embed_dims))
optim_wrapper = dict(optimizer=dict(lr=4e-5), paramwise_cfg=dict(layer_decay_rate=0.9))
max_iters = 80000
param_scheduler = {{_base_.schedules.poly80k}}
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(checkpoint=dict(max_keep_ckpts=10))
auto_scale_lr = dict(base_batch_size=16)
train_dataloader = dict(batch_size=2)
