# EVA-01 linear probing on IN-1K at 224 (shared spec 3.1, EVA-CLIP vision encoder row):
# cls token after the final LayerNorm -> BatchNorm1d(affine=False, eps 1e-6) -> Linear
# (std 0.01); the whole backbone is frozen. LARS (momentum 0.9, trust 1e-3), lr 1.0, wd 0,
# batch 16000 (40 GPUs x 400), 90 epochs (10 warmup), TF-style RandomResizedCrop + flip only.
# Paper: 86.462 (224), 86.498 (336, lr 0.6).
# Init: tools/model_converters/eva_to_mm.py eva_clip_psz14_vision_enc.pt checkpoints/eva/eva_clip_vision_enc_mm.pth --format eva-clip-vision
# (the released probe itself: eva_to_mm.py eva_clip_vis_enc_sz224_lincls_86p5.pth X.pth -> load_from / tools/test.py)
_base_ = './_base_/eva_cls_runtime.py'

img_size = 224
data_preprocessor = dict(num_classes=1000, mean={{_base_.clip_mean}}, std={{_base_.clip_std}},
                         to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
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
    batch_size=400, num_workers=10, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root='data/imagenet', split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=400, num_workers=10, persistent_workers=True, pin_memory=True,
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
        out_type='cls_token', final_norm=True, frozen_stages=40,
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/eva/eva_clip_vision_enc_mm.pth',
                      prefix='backbone.')),
    head=dict(type='EVALinearProbeHead', num_classes=1000, in_channels=1408,
              loss=dict(type='CrossEntropyLoss')),
)

optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic',
    optimizer=dict(type='LARS', lr=1.0, momentum=0.9, weight_decay=0., eta=1e-3))
max_epochs, warmup_epochs = 90, 10
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=True, begin=warmup_epochs,
         end=max_epochs, T_max=max_epochs - warmup_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=16000, enable=False)
