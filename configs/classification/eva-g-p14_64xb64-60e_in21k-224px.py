# EVA-01 IN-21K intermediate fine-tune of the MIM model at 224 (shared spec 3.1, first row):
# 60 epochs (15 warmup), batch 4096 (64 GPUs x 64), lr 1e-4, layer decay 0.85, drop path 0.4,
# cutmix 1.0 (no mixup), label smoothing 0.1, AdamW betas (0.9, 0.98) eps 1e-6, wd 0.05,
# RRC scale (0.5, 1), RandAugment m9-mstd0.5-inc1, no random erasing, no evaluation.
# Init: tools/model_converters/eva_to_mm.py eva_psz14.pt checkpoints/eva/eva_psz14_mm.pth
_base_ = './_base_/eva_finetune.py'

img_size = 224
num_classes = 21841
data_preprocessor = dict(num_classes=num_classes)
train_pipeline = {{_base_.in1k_pipelines.eva01_in21k_224.train}}
train_dataloader = dict(
    batch_size=64,
    dataset=dict(type='ImageNet21k', data_root='data/imagenet21k', split='train',
                 pipeline=train_pipeline))
val_dataloader = val_evaluator = val_cfg = None
test_dataloader = test_evaluator = test_cfg = None

model = dict(
    backbone=dict(
        arch='giant', img_size=img_size, drop_path_rate=0.4, fp32_attn_and_norm=True,
        with_cp=True, init_std=0.02,
        init_cfg=dict(checkpoint='checkpoints/eva/eva_psz14_mm.pth')),
    head=dict(num_classes=num_classes, in_channels=1408, loss=dict(label_smooth_val=0.1)),
    train_cfg=dict(augments=dict(type='CutMix', alpha=1.0)),
)
optim_wrapper = dict(optimizer=dict(lr=1e-4, betas=(0.9, 0.98), eps=1e-6),
                     paramwise_cfg=dict(layer_decay_rate=0.85))
max_epochs, warmup_epochs = 60, 15
param_scheduler = {{_base_.schedules.e60_w15}}
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, _delete_=True)
custom_hooks = [dict(type='FiniteLossHook')]  # no EMA
auto_scale_lr = dict(base_batch_size=4096, enable=False)
default_hooks = dict(checkpoint=dict(save_best=None))
