# Demo: fine-tune the EVA-02 MIM demo backbone on the digits, with the EVA-01 demo's digits
# recipe (configs/demo/eva-cls_vit-tiny-p14_1xb64-80e_digits.py: mean pooling + fc_norm,
# label smoothing, AdamW 4e-3, no layer decay, warmup + cosine) so that the two rows of the
# demo table differ by the backbone and its pretraining only. The digits are written at 40 px
# (5x5 patches of 8 px, the EVA-02 MIM grid). Half the EVA-01 stage's epochs: the time budget.
# The real EVA-02 fine-tuning recipes are configs/classification/eva02-*.
_base_ = './eva-cls_vit-tiny-p14_1xb64-80e_digits.py'

data_root = 'data/demo/digits40'  # written by tools/demo.py (the eva02 stage)
img_size, patch_size = 40, 8
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.7, 1.0),
         aspect_ratio_range=(0.85, 1.18), backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=img_size, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(dataset=dict(data_root=data_root,
                                                  pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=96, num_layers=4, num_heads=3,
                  feedforward_channels=256, mlp_type='swiglu', sub_ln=True, rope=True),
        img_size=img_size, patch_size=patch_size, rope_ref_size=img_size // patch_size,
        # tools/demo.py points this at the EVA-02 MIM demo checkpoint
        init_cfg=None))

max_epochs = 40
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=2, end=max_epochs,
         T_max=max_epochs - 2, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs))
# the same table twice on one machine (README, Demo results): seeded, deterministic kernels
randomness = dict(seed=0, deterministic=True)
