# EVA-02 image classification fine-tuning, shared by the Ti/S/B/L configs (reference spec
# eva02_reference.md 5; asuka/run_class_finetuning.py): Adam(W) betas (0.9, 0.999) eps 1e-8,
# wd 0.05 (none on 1-D / pos_embed / cls_token), layer decay over depth + 2 ids, warmup from 0
# then cosine per step to 0, no grad clip, fp16, RandAugment rand-m9-mstd0.5-inc1 (bicubic),
# no random erasing (reprob 0), no mixup / cutmix -> label-smoothing CE, OpenAI-CLIP mean/std,
# eval short-side Resize(size) + CenterCrop(size). The patch embedding is frozen
# (stop_grad_conv1=True), mean pooling + fc_norm, head x0.001, pos_embed resized at load.
# Each config sets: arch, img_size, lr, lrd, dpr, label smoothing, RRC scale, epochs, warmup,
# batch, num_classes, EMA, the init checkpoint.
_base_ = './eva_finetune.py'

img_size = 448
num_classes = 1000
train_pipeline = {{_base_.in1k_pipelines.eva02_448.train}}
test_pipeline = {{_base_.in1k_pipelines.eva02_448.test}}
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

model = dict(
    backbone=dict(
        arch='eva02-base', img_size=img_size, drop_path_rate=0.1, with_cp=False,
        init_cfg=dict(checkpoint='checkpoints/eva02/SET_ME_mm.pth')),
    head=dict(num_classes=num_classes, in_channels=768, loss=dict(label_smooth_val=0.1)))
optim_wrapper = dict(optimizer=dict(lr=1e-4), paramwise_cfg=dict(layer_decay_rate=0.7))
auto_scale_lr = dict(base_batch_size=1024, enable=False)
