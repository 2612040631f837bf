# Evaluation of the IN-1K 336 model on an ImageNet variant; children set the variant.
#   tools/test.py configs/classification/robustness/eva-g-p14_336px_in1k-a.py CKPT
# Paper (336): IN-1K 89.6, V2 81.570, ReaL 90.828, A 86.154, R 88.283, Sketch 67.724,
# ObjectNet 60.907 (avg 79.3). Summarise several runs with tools/analysis_tools/results_table.py.
_base_ = '../eva-g-p14_32xb16-10e_in1k-336px.py'

variant = 'val'
data_root = 'data/imagenet'
test_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_delete_=True, type='ImageNetVariant', variant=variant, data_root=data_root,
                 pipeline={{_base_.test_pipeline}}))
test_evaluator = dict(_delete_=True, type='RobustAccuracy', prefix=f'in1k-{variant}')
# these runs only test: no pretrained init needed (the checkpoint is loaded by tools/test.py)
model = dict(backbone=dict(init_cfg=None))
custom_hooks = []
