# Demo: EVA-02 MIM on CPU in minutes, with the demo's own trained EVA-CLIP as the teacher.
# The real recipe (configs/pretrain/eva02-mim_vit-b-p14_32xb64-150e_in21k.py) with its sizes
# overridden: student = a tiny EVA-02 (4 blocks, 96 wide; 2-D RoPE, naive SwiGLU with sub-LN,
# split q/k/v: the B/L block form) at 40 px / patch 8 (5x5 patches); teacher = the image
# tower of the CLIP demo (configs/demo/eva-clip_vit-tiny-p8_1xb64-6e_shapes-captions.py,
# 3 blocks x 64 wide, patch 8, 40 px: the same 5x5 grid), frozen, its 64-d projected patch
# tokens regressed on the masked patches. tools/demo.py (stage `eva02`) sets
# model.teacher.checkpoint to the CLIP stage's checkpoint; the data are the EVA-01 MIM
# stage's 512 generated images (data/demo/mim), so the two pretrainings see the same pixels.
_base_ = '../pretrain/eva02-mim_vit-b-p14_32xb64-150e_in21k.py'

data_root = 'data/demo/mim'
img_size, patch_size = 40, 8
grid = img_size // patch_size  # 5: the teacher's patch grid and RoPE's pt_seq_len
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.2, 1.0),
         aspect_ratio_range=(3. / 4., 4. / 3.), interpolation='bicubic', backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    # 10 of 25 patches (EVA-02's 105 of 256), blocks of at least 2
    dict(type='EVAMaskGenerator', input_size=grid, num_masking_patches=10, min_num_patches=2,
         min_aspect=0.3),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32, num_workers=2, persistent_workers=True, pin_memory=False,
    dataset=dict(dataset=dict(data_root=data_root, pipeline=train_pipeline)))

tiny_clip_tower = dict(embed_dims=64, num_layers=3, num_heads=2, feedforward_channels=256)
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=96, num_layers=4, num_heads=3,
                  feedforward_channels=256, mlp_type='swiglu', sub_ln=True, rope=True),
        img_size=img_size, patch_size=patch_size, rope_ref_size=grid),
    head=dict(in_channels=96, out_channels=64),
    teacher=dict(
        embed_dim=64, checkpoint=None,  # tools/demo.py: the CLIP stage's checkpoint
        vision_backbone=dict(arch=dict(_delete_=True, **tiny_clip_tower), img_size=img_size,
                             patch_size=patch_size, norm_eps=1e-6)),
)

# fp32 on CPU; the recipe's AdamW, clip and parameter groups, the demo's lr and schedule
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05),
    clip_grad=dict(max_norm=3.0), paramwise_cfg={{_base_.optim_wrapper.paramwise_cfg}})
max_epochs = 16
param_scheduler = {{_base_.schedules.e16_w1}}
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(logger=dict(type='LoggerHook', interval=4),
                     checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=max_epochs,
                                     max_keep_ckpts=1))
# the same table twice on one machine (README, Demo results): seeded, deterministic kernels
randomness = dict(seed=0, deterministic=True)
