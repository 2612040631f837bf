# Demo: DINO on EVA-02 end to end on CPU in minutes. The real recipe
# (configs/detection/dino-4scale_eva02-b-p16_lsj-1024_16xb1-90k_coco.py) shrunk: a 4-block
# 64-wide EVA-02 EVAViT (SwiGLU, sub-LN, RoPE per window) at 128 px / patch 16 (8x8 tokens),
# window 4 with global blocks 1 and 3; the same pyramid (strides 8-64) + ChannelMapper and
# mmdet's DINO (deformable encoder/decoder, denoising queries, focal loss, Hungarian matching)
# at its real width 256 with 2 encoder / 3 decoder layers, FFN 512 and 30 queries. Trained from scratch (no
# weights can be downloaded) on the generated shapes of the cascade demo, boxes only
# (configs/demo/_base_/shapes-128_detection.py). Sized for a 2-core CPU.
_base_ = ['../detection/dino-4scale_eva02-b-p16_lsj-1024_16xb1-90k_coco.py',
          './_base_/shapes-128_detection.py']

data_root = {{_base_.shapes.box.data_root}}
image_size = 128
num_classes = 3
ch = 256  # DINO's width: its query sine embedding is fixed at 4 x 128 (mmdet and detrex)
num_levels = 4
model = dict(
    num_queries=30,
    data_preprocessor=dict(
        batch_augments=[dict(type='BatchFixedSizePad', size=(image_size, image_size))],
        test_pad_size=(image_size, image_size)),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=64, num_layers=4, num_heads=2,
                  feedforward_channels=170, mlp_type='swiglu', sub_ln=True, rope=True),
        img_size=image_size, pos_embed_size=image_size, window_size=4,
        global_block_indices=(1, 3), drop_path_rate=0.0, init_cfg=None),
    neck=[dict(type='SimpleFeaturePyramid', in_channels=64, out_channels=ch,
               scale_factors=(2.0, 1.0, 0.5), num_outs=num_levels,
               norm_cfg=dict(type='LN2d', eps=1e-6)),
          dict(type='ChannelMapper', in_channels=[ch] * num_levels, kernel_size=1,
               out_channels=ch, bias=True, act_cfg=None,
               norm_cfg=dict(type='GN', num_groups=32), num_outs=num_levels)],
    encoder=dict(num_layers=2, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=ch),
        ffn_cfg=dict(embed_dims=ch, feedforward_channels=512))),
    decoder=dict(num_layers=3, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=ch), cross_attn_cfg=dict(embed_dims=ch),
        ffn_cfg=dict(embed_dims=ch, feedforward_channels=512))),
    bbox_head=dict(num_classes=num_classes, embed_dims=ch),
    dn_cfg=dict(group_cfg=dict(num_dn_queries=20)),
    test_cfg=dict(max_per_img=30))

train_pipeline = {{_base_.shapes.box.train_pipeline}}
test_pipeline = {{_base_.shapes.box.test_pipeline}}
metainfo = {{_base_.shapes.box.metainfo}}
# the recipe's COCO loaders replaced, not merged into
train_dataloader = dict(_delete_=True, **_base_.shapes.box.train_dataloader)
val_dataloader = dict(_delete_=True, **_base_.shapes.box.val_dataloader)
test_dataloader = val_dataloader
val_evaluator = {{_base_.shapes.box.val_evaluator}}
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=1e-4),
                     paramwise_cfg=dict(layer_decay_rate=0.9), clip_grad=dict(max_norm=1.0))
max_iters = 400
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=40),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.85)], gamma=0.1)]
auto_scale_lr = dict(base_batch_size=8)
default_hooks = dict(logger=dict(type='LoggerHook', interval=25),
                     checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                     interval=max_iters, max_keep_ckpts=1),
                     visualization=dict(type='DetVisualizationHook', draw=False))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0, deterministic=True)
