# EVA-02-B MIM pretraining on IN-21K (eva02_reference.md 4; asuka/run_eva02_pretraining.py):
# the student regresses the EVA-CLIP teacher's 1024-d features of the masked patches (final
# norm + CLIP projection on every patch token; -cosine, fp32), 105 of 16x16 patches masked
# block-wise, mask tokens before the position table (they also get RoPE), patch-embedding
# gradient x0.1 (stop_grad_conv1). 150 epochs (1 warmup from 0), batch 2048 (32 GPUs x 64),
# lr 1.5e-3, Adam(W) betas (0.9, 0.98) eps 1e-6, wd 0.05 constant (none on 1-D / pos_embed /
# cls_token; mask_token decayed), clip 3.0, cosine to 1e-5, fp16 (scale 2^16, window 500), no
# layer decay, drop path 0. Aug: flip + RRC (0.2, 1) bicubic 224, same crop for both, CLIP
# mean/std.
# Teacher: our EVA-CLIP image tower (EVA-01-CLIP g/14 in the release): an EVACLIP run's
# checkpoint, or the released tower (backbone.* + clip_projection.*):
#   python tools/model_converters/eva_to_mm.py eva_clip_psz14_vision_enc.pt \
#       checkpoints/eva/eva_clip_psz14_vision_mm.pth --format eva-clip-vision
_base_ = './_base_/eva_mim_runtime.py'

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.0),
         aspect_ratio_range=(3. / 4., 4. / 3.), interpolation='bicubic', backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='EVAMaskGenerator', input_size=16, num_masking_patches=105,
         min_num_patches=16, min_aspect=0.3),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64, num_workers=10, persistent_workers=True, pin_memory=True,
    sampler=dict(type='EpochSeededSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='EpochSeededDataset', seed=0, dataset=dict(
        type='CustomDataset', with_label=False, data_root='data/imagenet21k',
        data_prefix='train', pipeline=train_pipeline)))

model = dict(
    type='EVAMIM',
    backbone=dict(
        type='EVAViT', arch='eva02-base', img_size=224, patch_size=14, out_type='raw',
        final_norm=True, with_mask_token=True, drop_path_rate=0.0, init_type='eva02',
        init_std=0.02, patch_embed_grad_scale=0.1),
    head=dict(type='EVAMIMHead', in_channels=768, out_channels=1024, init_std=0.02,
              init_cfg=dict(type='Xavier', distribution='normal', layer='Linear')),
    teacher=dict(
        type='EVACLIPTeacher', embed_dim=1024,
        checkpoint='checkpoints/eva/eva_clip_psz14_vision_mm.pth',
        vision_backbone=dict(type='EVAViT', arch='giant', img_size=224, patch_size=14,
                             out_type='raw', final_norm=True, fp32_attn_and_norm=True)),
)

optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='float16',
    loss_scale=dict(init_scale=2.**16, growth_interval=500),
    optimizer=dict(type='AdamW', lr=1.5e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(
        flat_decay_mult=0.0,
        custom_keys={'pos_embed': dict(decay_mult=0.), 'cls_token': dict(decay_mult=0.)}))
max_epochs, warmup_epochs = 150, 1
param_scheduler = {{_base_.schedules.e150_w1}}
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=2048, enable=False)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000,
                                     max_keep_ckpts=3))
