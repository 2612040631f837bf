# EVA-02-S IN-1K fine-tune at 336 from the IN-21K MIM model (eva02_reference.md 5): as Ti
# (100 epochs, 5 warmup, batch 1024, drop path 0.1, label smoothing 0.1, EMA) with lr 1e-4 and
# layer decay 0.8. Released: 85.780 / 97.598 (evaluated without EMA).
# Init: tools/model_converters/eva_to_mm.py eva02_S_pt_in21k_p14.pt checkpoints/eva02/eva02_S_pt_in21k_p14_mm.pth
_base_ = './eva02-ti-p14_8xb128-100e_in1k-336px.py'

model = dict(
    backbone=dict(arch='eva02-small', init_cfg=dict(
        checkpoint='checkpoints/eva02/eva02_S_pt_in21k_p14_mm.pth')),
    head=dict(in_channels=384))
optim_wrapper = dict(optimizer=dict(lr=1e-4), paramwise_cfg=dict(layer_decay_rate=0.8))
