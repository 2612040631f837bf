# EVA-01 video (EVA-01/video/, X-CLIP-derived code) on mmaction2: the parts every stage shares.
# ViT-g/14 (the one EVAViT), tubelet-1 patch embedding, spatial pos-embed tiled over frames,
# joint space-time attention over 1 + T*256 tokens, mean pooling + fc_norm + linear head.
_base_ = ['mmaction::_base_/default_runtime.py']
custom_imports = dict(imports=['projects.eva.video', 'projects.eva.engine'],
                      allow_failed_imports=False)

# Video uses the ImageNet statistics (not the CLIP ones of MIM / classification).
model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='mmpretrain.EVAViT', arch='giant', img_size=224, patch_size=14,
        num_frames=8,  # set per stage
        out_type='avg_featmap', final_norm=False, with_cls_token=True,
        drop_path_rate=0.3,  # set per stage
        fp32_attn_and_norm=True,  # EVA-01 LayerNormWithForceFP32 + fp32 attention under AMP
        with_cp=True,  # USE_CHECKPOINT: True
        freeze_patch_embed=False,  # STOP_GRAD_CONV1: False (trainable patch embedding)
        init_std=0.02),
    cls_head=dict(
        type='EVAVideoHead', num_classes=400, in_channels=1408, init_std=0.02, init_scale=0.001,
        dropout_ratio=0., average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], format_shape='NCTHW'),
    # 12 test views of 16 x 224^2 (4097 tokens each) are run 3 at a time (test batch size 1)
    test_cfg=dict(max_testing_views=3))

# Data (stage configs): videos under data/kinetics{400,600,700}/videos_{train,val}/<class>/
# (mmaction2's Kinetics layout); annotation lists and class mappings under data/kinetics722/,
# written by tools/misc/build_k722.py; VideoDataset paths are relative to data/.

def _pipelines(num_frames):
    """EVA-01's train / val / test pipelines for clips of ``num_frames``."""
    train_pipeline = [
        dict(type='CheckedDecordInit'),
        dict(type='UniformSample', clip_len=num_frames),  # TSN: one random frame per segment
        dict(type='CheckedDecordDecode'),
        dict(type='Resize', scale=(-1, 256)),
        dict(type='MultiScaleCrop', input_size=224, scales=(1, 0.875, 0.75, 0.66),
             random_crop=False, max_wh_scale_gap=1),
        dict(type='Resize', scale=(224, 224), keep_ratio=False),
        dict(type='Flip', flip_ratio=0.5),
        dict(type='VideoColorJitter', prob=0.8, brightness=0.4, contrast=0.4, saturation=0.2,
             hue=0.1),
        dict(type='VideoRandomGrayscale', prob=0.2),
        dict(type='FormatShape', input_format='NCTHW'),
        dict(type='PackActionInputs'),
    ]
    val_pipeline = [  # single view during training, as EVA-01 (short side 256, centre 224)
        dict(type='CheckedDecordInit'),
        dict(type='UniformSample', clip_len=num_frames, num_clips=1, test_mode=True),
        dict(type='CheckedDecordDecode'),
        dict(type='Resize', scale=(-1, 256)),
        dict(type='CenterCrop', crop_size=224),
        dict(type='FormatShape', input_format='NCTHW'),
        dict(type='PackActionInputs'),
    ]
    test_pipeline = [  # num_frames x 3 crops x 4 clips = 12 views (EVA-01 multi-view test)
        dict(type='CheckedDecordInit'),
        dict(type='UniformSample', clip_len=num_frames, num_clips=4, test_mode=True),
        dict(type='CheckedDecordDecode'),
        dict(type='Resize', scale=(-1, 224)),
        dict(type='ThreeCrop', crop_size=224),
        dict(type='FormatShape', input_format='NCTHW'),
        dict(type='PackActionInputs'),
    ]
    return dict(train=train_pipeline, val=val_pipeline, test=test_pipeline)


# defined here once for both clip lengths: ``{{_base_.video_pipelines.u16.train}}`` ...
video_pipelines = dict(u8=_pipelines(8), u16=_pipelines(16))

# apex AMP O1 in EVA-01 -> AmpOptimWrapper (fp16, dynamic loss scale); AdamW eps 1e-6,
# wd 0.05 except 1-D tensors, biases, pos_embed and cls_token; EVA-01 layer ids.
optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic',
    constructor='EVALayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=8e-6, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=1.0, no_decay_1d=True,
                       no_decay_keys=('pos_embed', 'cls_token')))

val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3, save_best='auto'))
randomness = dict(seed=0, diff_rank_seed=True)
# total batch 256 as EVA-01: scale the lr linearly with --auto-scale-lr on other setups
auto_scale_lr = dict(enable=False, base_batch_size=256)
