# The guide's video recipe (eva02-b-p14_custom-video.py) shrunk to run on a laptop CPU in a
# few minutes (docs/custom_data.md, "Try it on a CPU first"): the same EVA-02 blocks
# (SwiGLU, sub-LN, RoPE on every frame) 2 deep and 64 wide, 8 frames of 56 px, from scratch,
# fp32, on the generated clips of a shape moving left / right / up / down:
#   python -m projects.eva.demo.guide_data video data/guide_video
#   python tools/train.py configs/custom/eva02-b-p14_custom-video_cpu-tiny.py
# From scratch on clips where no single frame tells the classes apart, three settings follow
# the video demo (configs/demo/eva-video_vit-tiny-p14_1xb16-8e_moving-shapes.py, which says
# why): pos_embed lr x40 (frame order reaches the model only through the position table),
# no flip (it swaps left and right) and no colour augmentation.
_base_ = '{{$EVA_CONFIGS:..}}/custom/eva02-b-p14_custom-video.py'

classes = ('left', 'right', 'up', 'down')  # label order of the generated lists
data_root = 'data/guide_video'
max_epochs, warmup_epochs = 8, 1
batch_size = 16
img_size = 56

model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=64, num_layers=2, num_heads=2,
                            feedforward_channels=172, mlp_type='swiglu', sub_ln=True,
                            rope=True),
                  img_size=img_size, rope_ref_size=img_size // 14, drop_path_rate=0.0,
                  freeze_patch_embed=False, with_cp=False, init_cfg=None),
    cls_head=dict(num_classes=len(classes), in_channels=64, init_scale=1.0,
                  label_smooth_eps=0.0),
    test_cfg=None)
optim_wrapper = dict(
    _delete_=True, constructor='EVALayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=1.0, no_decay_keys=('pos_embed', 'cls_token'),
                       custom_keys={'pos_embed': dict(lr_mult=40.0)}),
    clip_grad=dict(max_norm=5.0))

train_pipeline = [
    dict(type='CheckedDecordInit'),
    dict(type='UniformSample', clip_len=8),
    dict(type='CheckedDecordDecode'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='CheckedDecordInit'),
    dict(type='UniformSample', clip_len=8, num_clips=1, test_mode=True),
    dict(type='CheckedDecordDecode'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
metainfo = dict(classes=classes)
train_dataloader = dict(
    batch_size=batch_size, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file=data_root + '/train_list_videos.txt',
                 data_prefix=dict(video=data_root), metainfo=metainfo,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=batch_size, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file=data_root + '/val_list_videos.txt',
                 data_prefix=dict(video=data_root), metainfo=metainfo,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, T_max=max_epochs - warmup_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_begin=max_epochs, val_interval=max_epochs)
default_hooks = dict(logger=dict(interval=8),
                     checkpoint=dict(interval=max_epochs, max_keep_ckpts=1, save_best=None))
custom_hooks = [dict(type='FiniteLossHook')]
