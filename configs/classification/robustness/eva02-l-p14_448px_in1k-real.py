# ImageNet-ReaL: the flat IN-1K val images + real.json (github.com/google-research/reassessed-imagenet)
_base_ = '../_base_/eva02-l-p14_448px_robustness.py'
variant = 'real'
data_root = 'data/imagenet'   # data/imagenet/val/ILSVRC2012_val_*.JPEG (flat) and data/imagenet/real.json
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=448, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=448),
    dict(type='PackInputs', algorithm_keys=['real_labels']),
]
test_dataloader = dict(dataset=dict(variant=variant, data_root=data_root,
                                    pipeline=test_pipeline))
test_evaluator = dict(prefix=f'in1k-{variant}')
