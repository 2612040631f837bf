_base_ = '../_base_/eva02-l-p14_448px_robustness.py'
variant = 'v2'
data_root = 'data/imagenetv2/imagenetv2-matched-frequency-format-val'
test_dataloader = dict(dataset=dict(variant=variant, data_root=data_root))
test_evaluator = dict(prefix=f'in1k-{variant}')
