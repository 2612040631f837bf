# EVA-02-Ti IN-1K fine-tune at 336 from the IN-21K MIM model (eva02_reference.md 5): 100 epochs
# (5 warmup), batch 1024 (8 GPUs x 128), lr 2e-4, layer decay 0.9, drop path 0.1, label
# smoothing 0.1, RRC (0.08, 1), EMA 0.9999. Released: 80.714 / 95.536 (evaluated without EMA).
# Init: tools/model_converters/eva_to_mm.py eva02_Ti_pt_in21k_p14.pt checkpoints/eva02/eva02_Ti_pt_in21k_p14_mm.pth
# (the 224 pos-embed is resized to 24x24 on load; RoPE is computed for the 24x24 grid).
_base_ = './_base_/eva02-p14_finetune.py'

img_size = 336
train_pipeline = {{_base_.in1k_pipelines.eva02_336.train}}
test_pipeline = {{_base_.in1k_pipelines.eva02_336.test}}
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
model = dict(
    backbone=dict(arch='eva02-tiny', img_size=img_size, drop_path_rate=0.1, init_cfg=dict(
        checkpoint='checkpoints/eva02/eva02_Ti_pt_in21k_p14_mm.pth')),
    head=dict(in_channels=192, loss=dict(label_smooth_val=0.1)))
optim_wrapper = dict(optimizer=dict(lr=2e-4), paramwise_cfg=dict(layer_decay_rate=0.9))
max_epochs, warmup_epochs = 100, 5
param_scheduler = {{_base_.schedules.e100_w5}}
train_cfg = dict(max_epochs=max_epochs)
