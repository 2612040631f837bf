# The guide's segmentation recipe (eva02-b-p16_upernet_custom-seg.py) shrunk to run on a laptop
# CPU in about a minute (docs/custom_data.md, "Try it on a CPU first"): the same EVA-02 blocks
# 4 deep and 64 wide at 128 px, the real Feature2Pyramid + UperNet at 32 channels (BN: one
# process), from scratch, fp32, 120 iterations on generated shape label maps:
#   python -m projects.eva.demo.guide_data segmentation data/guide_segmentation
#   python tools/train.py configs/custom/eva02-b-p16_upernet_custom-seg_cpu-tiny.py
_base_ = '{{$EVA_CONFIGS:..}}/custom/eva02-b-p16_upernet_custom-seg.py'

classes = ('circle', 'square', 'triangle')  # label values 1..3 (0 = unlabelled background)
palette = [[230, 25, 75], [60, 180, 75], [0, 130, 200]]
data_root = 'data/guide_segmentation'
img_suffix, seg_map_suffix = '.jpg', '.png'
max_iters, warmup_iters = 120, 10
size, dims, ch = 128, 64, 32

norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=(size, size)),
    backbone=dict(arch=dict(_delete_=True, embed_dims=dims, num_layers=4, num_heads=2,
                            feedforward_channels=172, mlp_type='swiglu', sub_ln=True,
                            rope=True),
                  img_size=(size, size), out_indices=[0, 1, 2, 3], drop_path_rate=0.0,
                  with_cp=False, init_cfg=None),
    neck=dict(embed_dim=dims, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=[dims] * 4, channels=ch, num_classes=len(classes),
                     norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=dims, channels=ch, num_classes=len(classes),
                        norm_cfg=norm_cfg),
    test_cfg=dict(mode='whole'))
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
                     constructor='EVALayerDecayOptimWrapperConstructor',
                     paramwise_cfg=dict(layer_decay_rate=0.85, no_decay_1d=True))
load = dict(type='CheckedLoadAnnotations', reduce_zero_label=True)
train_pipeline = [
    dict(type='LoadImageFromFile'), load,
    dict(type='RandomResize', scale=(size, size), ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(size, size)), dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')]
test_pipeline = [dict(type='LoadImageFromFile'),
                 dict(type='Resize', scale=(size, size), keep_ratio=True), load,
                 dict(type='PackSegInputs')]
dataset = dict(data_root=data_root, metainfo=dict(classes=classes, palette=palette),
               img_suffix=img_suffix, seg_map_suffix=seg_map_suffix)
train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                        dataset=dict(**dataset, pipeline=train_pipeline))
val_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                      dataset=dict(**dataset, pipeline=test_pipeline))
test_dataloader = val_dataloader
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=warmup_iters,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters),
                     logger=dict(interval=10, log_metric_by_epoch=False))
