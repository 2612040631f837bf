# EVA-02-B IN-21K intermediate fine-tune at 448 from the IN-21K MIM model (eva02_reference.md
# 5): 40 epochs (1 warmup), batch 2048 (32 GPUs x 64), lr 3e-4, layer decay 0.7, drop path 0.1,
# label smoothing 0.1, RRC (0.2, 1), 21841 classes, no EMA, no evaluation.
# Init: tools/model_converters/eva_to_mm.py eva02_B_pt_in21k_p14.pt checkpoints/eva02/eva02_B_pt_in21k_p14_mm.pth
_base_ = './_base_/eva02-p14_finetune.py'

img_size = 448
num_classes = 21841
data_preprocessor = dict(num_classes=num_classes)
train_pipeline = {{_base_.in1k_pipelines.eva02_in21k_448.train}}
train_dataloader = dict(
    batch_size=64,
    dataset=dict(type='ImageNet21k', data_root='data/imagenet21k', split='train',
                 pipeline=train_pipeline))
val_dataloader = val_evaluator = val_cfg = None
test_dataloader = test_evaluator = test_cfg = None
model = dict(
    backbone=dict(arch='eva02-base', drop_path_rate=0.1, init_cfg=dict(
        checkpoint='checkpoints/eva02/eva02_B_pt_in21k_p14_mm.pth')),
    head=dict(num_classes=num_classes, in_channels=768, loss=dict(label_smooth_val=0.1)))
optim_wrapper = dict(optimizer=dict(lr=3e-4), paramwise_cfg=dict(layer_decay_rate=0.7))
max_epochs, warmup_epochs = 40, 1
param_scheduler = {{_base_.schedules.e40_w1}}
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, _delete_=True)
custom_hooks = [dict(type='FiniteLossHook')]  # no EMA
default_hooks = dict(checkpoint=dict(save_best=None))
auto_scale_lr = dict(base_batch_size=2048)
