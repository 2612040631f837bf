# EVA-02-B IN-1K fine-tune at 448 from its IN-21K intermediate model (eva02_reference.md 5):
# 15 epochs (2 warmup), batch 512 (16 GPUs x 32), lr 5e-5, layer decay 0.8, drop path 0.15,
# label smoothing 0.2, RRC (0.08, 1), EMA 0.9999. Released: 88.570 / 98.650 (EMA).
# Init: the released IN-21K intermediate model (or the checkpoint of
# eva02-b-p14_32xb64-40e_in21k-448px.py); its 21841-way head is not loaded:
#   python tools/model_converters/eva_to_mm.py eva02_B_pt_in21k_medft_in21k_p14.pt \
#       checkpoints/eva02/eva02_B_pt_in21k_medft_in21k_p14_mm.pth
_base_ = './_base_/eva02-p14_finetune.py'

train_dataloader = dict(batch_size=32)
model = dict(
    backbone=dict(arch='eva02-base', drop_path_rate=0.15, init_cfg=dict(
        checkpoint='checkpoints/eva02/eva02_B_pt_in21k_medft_in21k_p14_mm.pth')),
    head=dict(in_channels=768, loss=dict(label_smooth_val=0.2)))
optim_wrapper = dict(optimizer=dict(lr=5e-5), paramwise_cfg=dict(layer_decay_rate=0.8))
max_epochs, warmup_epochs = 15, 2
param_scheduler = {{_base_.schedules.e15_w2}}
train_cfg = dict(max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=512)
