# The guide's classification recipe (eva02-b-p14_custom-imagefolder.py) shrunk to run on a
# laptop CPU in about a minute (docs/custom_data.md, "Try it on a CPU first"): the same
# EVA-02 blocks (SwiGLU, sub-LN, RoPE) 2 deep and 64 wide at 56 px, from scratch, fp32, no
# EMA, 2 epochs on the generated digits:
#   python -m projects.eva.demo.guide_data classification data/guide_classification
#   python tools/train.py configs/custom/eva02-b-p14_custom-imagefolder_cpu-tiny.py
_base_ = '{{$EVA_CONFIGS:..}}/custom/eva02-b-p14_custom-imagefolder.py'

classes = tuple(str(d) for d in range(10))  # the class folders 0..9
data_root = 'data/guide_classification'
max_epochs, warmup_epochs = 2, 1
batch_size = 32
img_size = 56

data_preprocessor = dict(num_classes=len(classes))
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=64, num_layers=2, num_heads=2,
                            feedforward_channels=172, mlp_type='swiglu', sub_ln=True,
                            rope=True),
                  img_size=img_size, rope_ref_size=img_size // 14, with_cp=False,
                  drop_path_rate=0.0, init_cfg=None),
    head=dict(num_classes=len(classes), in_channels=64, init_scale=1.0))
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
                     constructor='EVALayerDecayOptimWrapperConstructor',
                     paramwise_cfg=dict(layer_decay_rate=1.0, no_decay_1d=True))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.6, 1.0), backend='pillow'),
    dict(type='PackInputs')]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=batch_size, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=batch_size, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=True, begin=warmup_epochs,
         end=max_epochs, T_max=max_epochs - warmup_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs), logger=dict(interval=10))
custom_hooks = [dict(type='FiniteLossHook')]
