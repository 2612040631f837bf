# EVA-01 IN-1K fine-tune at 336 from the IN-21K model (shared spec 3.1, second row):
# 10 epochs (2 warmup from 0, cosine to 0), batch 512 (32 GPUs x 16), lr 3e-5, layer decay
# 0.95, drop path 0.4, label smoothing 0.3, no mixup/cutmix, AdamW betas (0.9, 0.999) eps 1e-8,
# wd 0.05, RRC (0.08, 1), RandAugment m9-mstd0.5-inc1, EMA 0.9999 (validation and the saved
# state_dict use the EMA weights). Paper result: 89.6 top-1 (89.622 / 98.930).
# Init: tools/model_converters/eva_to_mm.py eva_21k_224px_psz14.pt checkpoints/eva/eva_21k_224px_psz14_mm.pth
# (the 224 pos-embed is resized to 24x24 on load; the 21841-way head is not loaded).
_base_ = './_base_/eva_cls_runtime.py'

img_size = 336
num_classes = 1000
data_preprocessor = dict(num_classes=num_classes, mean={{_base_.clip_mean}},
                         std={{_base_.clip_std}}, to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.08, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[104, 117, 123], interpolation='bicubic')),  # CLIP mean, BGR
    # run_class_finetuning.py's default --reprob 0.25 (the IN-1K command does not override it)
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02,
         max_area_ratio=1 / 3, fill_color=[104.1, 116.7, 122.8],
         fill_std=[70.3, 66.6, 68.5]),  # CLIP mean/std, BGR
    dict(type='PackInputs'),
]
# eval: Resize(size / crop_pct, crop_pct = 1.0, bicubic) + CenterCrop(size)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=img_size, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=16, num_workers=10, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root='data/imagenet', split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16, num_workers=10, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root='data/imagenet', split='val',
                 pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader, test_evaluator = val_dataloader, val_evaluator

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='EVAViT', arch='giant', img_size=img_size, patch_size=14,
        out_type='avg_featmap', final_norm=False, drop_path_rate=0.4,
        freeze_patch_embed=True, fp32_attn_and_norm=True, with_cp=True, init_std=0.02,
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/eva/eva_21k_224px_psz14_mm.pth',
                      prefix='backbone.')),
    head=dict(type='EVAClsHead', num_classes=num_classes, in_channels=1408,
              init_scale=0.001,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.3, mode='original')),
)

optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=3e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    constructor='EVALayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.95, no_decay_1d=True,
                       no_decay_keys=('pos_embed', 'cls_token')))
max_epochs, warmup_epochs = 10, 2
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=True, begin=warmup_epochs,
         end=max_epochs, T_max=max_epochs - warmup_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# EMA 0.9999: mmengine's momentum is 1 - decay
custom_hooks = [dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL'),
                dict(type='FiniteLossHook')]
auto_scale_lr = dict(base_batch_size=512, enable=False)
