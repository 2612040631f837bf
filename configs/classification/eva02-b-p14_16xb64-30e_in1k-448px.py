# EVA-02-B IN-1K fine-tune at 448 from the IN-21K MIM model (eva02_reference.md 5): 30 epochs
# (3 warmup), batch 1024 (16 GPUs x 64), lr 1e-4, layer decay 0.7, drop path 0.1, label
# smoothing 0.1, RRC (0.08, 1), EMA 0.9999. Released: 88.282 / 98.528 (evaluated without EMA).
# Init: tools/model_converters/eva_to_mm.py eva02_B_pt_in21k_p14.pt checkpoints/eva02/eva02_B_pt_in21k_p14_mm.pth
_base_ = './_base_/eva02-p14_finetune.py'

train_dataloader = dict(batch_size=64)
model = dict(
    backbone=dict(arch='eva02-base', drop_path_rate=0.1, init_cfg=dict(
        checkpoint='checkpoints/eva02/eva02_B_pt_in21k_p14_mm.pth')),
    head=dict(in_channels=768, loss=dict(label_smooth_val=0.1)))
optim_wrapper = dict(optimizer=dict(lr=1e-4), paramwise_cfg=dict(layer_decay_rate=0.7))
