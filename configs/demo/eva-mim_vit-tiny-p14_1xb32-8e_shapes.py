# Demo: EVA-01 MIM end to end on CPU in minutes.
# Student: a tiny EVA ViT (4 blocks, 96 wide) at 112 px / patch 14 (8x8 patches).
# Teacher: a tiny CLIP-architecture ViT with a *fixed random* init (seed 0) -- NOT a
# pretrained CLIP (no weights can be downloaded here); the real recipe is
# configs/pretrain/eva-mim_vit-g-p14_128xb32-150e_merged30m.py with OpenAI's ViT-L/14.
# Data: images drawn by projects/eva/demo/synthetic.py (tools/demo.py writes them).
_base_ = '../pretrain/_base_/eva_mim_runtime.py'

data_root = 'data/demo/mim'
img_size = 112
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.2, 1.0),
         interpolation='bicubic', backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    # 40% of 64 patches, min block 4 (EVA's 16 of 256 scaled to the 8x8 grid)
    dict(type='EVAMaskGenerator', input_size=8, num_masking_patches=26, min_num_patches=4,
         min_aspect=0.3),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32, num_workers=2, persistent_workers=True,
    # augmentations seeded by (seed, epoch, sample): --resume sees the same data
    sampler=dict(type='EpochSeededSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='EpochSeededDataset', seed=0, dataset=dict(
        type='CustomDataset', data_root=data_root, data_prefix='train',
        with_label=False, pipeline=train_pipeline)))

model = dict(
    type='EVAMIM',
    backbone=dict(
        type='EVAViT',
        arch=dict(embed_dims=96, num_layers=4, num_heads=3, feedforward_channels=384),
        img_size=img_size, patch_size=14, out_type='raw', final_norm=True,
        with_mask_token=True, drop_path_rate=0.0, init_std=0.015),
    head=dict(type='EVAMIMHead', in_channels=96, out_channels=32),
    teacher=dict(type='CLIPVisionTower', checkpoint=None, init_seed=0,
                 arch=dict(width=64, layers=2, heads=2, patch_size=14, image_size=img_size,
                           output_dim=32)),
)

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(flat_decay_mult=0.0, custom_keys={
        'pos_embed': dict(decay_mult=0.), 'cls_token': dict(decay_mult=0.)}))
max_epochs = 8
param_scheduler = {{_base_.schedules.e8_w1}}
# resumes exactly, also from a mid-epoch (iteration) checkpoint
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(logger=dict(type='LoggerHook', interval=4),
                     checkpoint=dict(type='CheckpointHook', interval=2, max_keep_ckpts=2))
# the same table twice on one machine (README, Demo results): seeded, deterministic kernels
randomness = dict(seed=0, deterministic=True)
