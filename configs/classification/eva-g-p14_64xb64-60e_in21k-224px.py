# EVA-01 IN-21K intermediate fine-tune of the MIM model at 224 (shared spec 3.1, first row):
# 60 epochs (15 warmup), batch 4096 (64 GPUs x 64), lr 1e-4, layer decay 0.85, drop path 0.4,
# cutmix 1.0 (no mixup), label smoothing 0.1, AdamW betas (0.9, 0.98) eps 1e-6, wd 0.05,
# RRC scale (0.5, 1), RandAugment m9-mstd0.5-inc1, no random erasing, no evaluation.
# Init: tools/model_converters/eva_to_mm.py eva_psz14.pt checkpoints/eva/eva_psz14_mm.pth
_base_ = './_base_/eva_cls_runtime.py'

img_size = 224
num_classes = 21841
data_preprocessor = dict(num_classes=num_classes, mean={{_base_.clip_mean}},
                         std={{_base_.clip_std}}, to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.5, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[104, 117, 123], interpolation='bicubic')),  # CLIP mean, BGR
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64, num_workers=10, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet21k', data_root='data/imagenet21k', split='train',
                 pipeline=train_pipeline))
val_dataloader = val_evaluator = val_cfg = None
test_dataloader = test_evaluator = test_cfg = None

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='EVAViT', arch='giant', img_size=img_size, patch_size=14,
        out_type='avg_featmap', final_norm=False, drop_path_rate=0.4,
        freeze_patch_embed=True,  # EVA-01 stop_grad_conv1
        fp32_attn_and_norm=True, with_cp=True, init_std=0.02,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/eva/eva_psz14_mm.pth',
                      prefix='backbone.')),
    head=dict(type='EVAClsHead', num_classes=num_classes, in_channels=1408,
              init_scale=0.001,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')),
    train_cfg=dict(augments=dict(type='CutMix', alpha=1.0)),
)

optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05),
    constructor='EVALayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.85, no_decay_1d=True,
                       no_decay_keys=('pos_embed', 'cls_token')))
max_epochs, warmup_epochs = 60, 15
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, T_max=max_epochs - warmup_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=4096, enable=False)
default_hooks = dict(checkpoint=dict(save_best=None))
