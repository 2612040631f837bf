# EVA-01 IN-1K fine-tune at 336 from the IN-21K model (shared spec 3.1, second row):
# 10 epochs (2 warmup from 0, cosine to 0), batch 512 (32 GPUs x 16), lr 3e-5, layer decay
# 0.95, drop path 0.4, label smoothing 0.3, no mixup/cutmix, AdamW betas (0.9, 0.999) eps 1e-8,
# wd 0.05, RRC (0.08, 1), RandAugment m9-mstd0.5-inc1, EMA 0.9999 (validation and the saved
# state_dict use the EMA weights). Paper result: 89.6 top-1 (89.622 / 98.930).
# Init: tools/model_converters/eva_to_mm.py eva_21k_224px_psz14.pt checkpoints/eva/eva_21k_224px_psz14_mm.pth
# (the 224 pos-embed is resized to 24x24 on load; the 21841-way head is not loaded).
_base_ = './_base_/eva_finetune.py'

img_size = 336
num_classes = 1000
train_pipeline = {{_base_.in1k_pipelines.eva01_336.train}}
test_pipeline = {{_base_.in1k_pipelines.eva01_336.test}}
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=16, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

model = dict(
    backbone=dict(
        arch='giant', img_size=img_size, drop_path_rate=0.4, fp32_attn_and_norm=True,
        with_cp=True, init_std=0.02,
        init_cfg=dict(checkpoint='checkpoints/eva/eva_21k_224px_psz14_mm.pth')),
    head=dict(num_classes=num_classes, in_channels=1408, loss=dict(label_smooth_val=0.3)))
optim_wrapper = dict(optimizer=dict(lr=3e-5), paramwise_cfg=dict(layer_decay_rate=0.95))
max_epochs, warmup_epochs = 10, 2
param_scheduler = {{_base_.schedules.e10_w2}}
train_cfg = dict(max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=512, enable=False)
