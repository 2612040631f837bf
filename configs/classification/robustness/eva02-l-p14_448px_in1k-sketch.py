_base_ = '../_base_/eva02-l-p14_448px_robustness.py'
variant = 'sketch'
data_root = 'data/imagenet-sketch/sketch'
test_dataloader = dict(dataset=dict(variant=variant, data_root=data_root))
test_evaluator = dict(prefix=f'in1k-{variant}')
