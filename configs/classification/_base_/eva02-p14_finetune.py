# EVA-02 image classification fine-tuning, shared by the Ti/S/B/L configs (reference spec
# eva02_reference.md 5; asuka/run_class_finetuning.py): Adam(W) betas (0.9, 0.999) eps 1e-8,
# wd 0.05 (none on 1-D / pos_embed / cls_token), layer decay over depth + 2 ids, warmup from 0
# then cosine per step to 0, no grad clip, fp16, RandAugment rand-m9-mstd0.5-inc1 (bicubic),
# no random erasing (reprob 0), no mixup / cutmix -> label-smoothing CE, OpenAI-CLIP mean/std,
# eval short-side Resize(size) + CenterCrop(size). The patch embedding is frozen
# (stop_grad_conv1=True), mean pooling + fc_norm, head x0.001, pos_embed resized at load.
# Each config sets: arch, img_size, lr, lrd, dpr, label smoothing, RRC scale, epochs, warmup,
# batch, num_classes, EMA, the init checkpoint.
_base_ = './eva_cls_runtime.py'

img_size = 448
num_classes = 1000
rrc_scale = (0.08, 1.0)
data_preprocessor = dict(num_classes=num_classes, mean={{_base_.clip_mean}},
                         std={{_base_.clip_std}}, to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=rrc_scale,
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[104, 117, 123], interpolation='bicubic')),  # CLIP mean, BGR
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=img_size, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32, num_workers=10, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root='data/imagenet', split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32, num_workers=10, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root='data/imagenet', split='val',
                 pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader, test_evaluator = val_dataloader, val_evaluator

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='EVAViT', arch='eva02-base', img_size=img_size, patch_size=14,
        out_type='avg_featmap', final_norm=False, drop_path_rate=0.1,
        freeze_patch_embed=True, with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/eva02/SET_ME_mm.pth',
                      prefix='backbone.')),
    head=dict(type='EVAClsHead', num_classes=num_classes, in_channels=768, init_scale=0.001,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')),
)

optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    constructor='EVALayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.7, no_decay_1d=True,
                       no_decay_keys=('pos_embed', 'cls_token')))
max_epochs, warmup_epochs = 30, 3
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=True, begin=warmup_epochs,
         end=max_epochs, T_max=max_epochs - warmup_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# EMA 0.9999 (mmengine momentum = 1 - decay) where the release trained with it
custom_hooks = [dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL'),
                dict(type='FiniteLossHook')]
auto_scale_lr = dict(base_batch_size=1024, enable=False)
