_base_ = '../_base_/eva02-l-p14_448px_robustness.py'
variant = 'val'
data_root = 'data/imagenet'
test_dataloader = dict(dataset=dict(variant=variant, data_root=data_root))
test_evaluator = dict(prefix=f'in1k-{variant}')
