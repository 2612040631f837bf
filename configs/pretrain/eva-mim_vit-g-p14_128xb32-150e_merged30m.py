# EVA-01 MIM pretraining of ViT-g/14 on Merged-30M (paper Table 3; shared spec section 2).
# 128 GPUs x 32 = 4096 images per step, 150 epochs, fp16 with dynamic loss scaling.
#   tools/dist_train.sh configs/pretrain/eva-mim_vit-g-p14_128xb32-150e_merged30m.py 8   (x16 nodes)
_base_ = './_base_/eva_mim_runtime.py'

# ---------------------------------------------------------------- data: Merged-30M
# Six public datasets, images only (labels unused), in their standard on-disk layouts.
# Each entry may also take an ``ann_file`` listing relative image paths (one per line) to
# avoid scanning 30M files at start-up.
merged30m_parts = [
    dict(data_root='data/imagenet21k', data_prefix='train'),              # IN-21K class folders
    dict(data_root='data/cc12m', data_prefix='images'),                   # img2dataset shards
    dict(data_root='data/cc3m', data_prefix='images'),
    dict(data_root='data/objects365', data_prefix='train'),               # Objects365 v2 patches
    dict(data_root='data/coco', data_prefix='train2017'),
    dict(data_root='data/ade/ADEChallengeData2016', data_prefix='images/training'),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    # one crop for student and teacher, both at 224
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.0),
         interpolation='bicubic', backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='EVAMaskGenerator', input_size=16, num_masking_patches=105,
         min_num_patches=16, min_aspect=0.3),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    # augmentations seeded by (seed, epoch, sample): --resume sees the same data
    sampler=dict(type='EpochSeededSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='EpochSeededDataset', seed=0, dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(type='CustomDataset', with_label=False, pipeline=train_pipeline, **part)
            for part in merged30m_parts
        ])))

# ---------------------------------------------------------------- model
model = dict(
    type='EVAMIM',
    backbone=dict(
        type='EVAViT', arch='giant', img_size=224, patch_size=14,
        out_type='raw', final_norm=True, with_mask_token=True,
        drop_path_rate=0.1, init_std=0.015, fp32_attn_and_norm=True, with_cp=False),
    head=dict(type='EVAMIMHead', in_channels=1408, out_channels=768, init_std=0.015),
    # OpenAI CLIP ViT-L/14 (TorchScript ViT-L-14.pt or its state dict), frozen.
    teacher=dict(type='CLIPVisionTower', arch='L/14', checkpoint='checkpoints/clip/ViT-L-14.pt'),
)

# ---------------------------------------------------------------- optimisation
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='float16',
    # DeepSpeed's dynamic scaler in EVA-01: 2**16 initial scale, 500-step growth window.
    loss_scale=dict(init_scale=2.**16, growth_interval=500),
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(
        # no decay on 1-D params (biases, q/v bias, norms), pos_embed, cls_token;
        # mask_token (1x1xC) is decayed, as EVA-01 did.
        flat_decay_mult=0.0,
        custom_keys={'pos_embed': dict(decay_mult=0.), 'cls_token': dict(decay_mult=0.)}))

max_epochs = 150
warmup_epochs = 2
param_scheduler = {{_base_.schedules.e150_w2}}
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=4096, enable=False)
# an epoch is ~7.3k steps: also keep an iteration checkpoint every 1000 steps
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000,
                                     max_keep_ckpts=3))
