# Evaluation of EVA-02-L (Merged-38M MIM -> IN-21K -> IN-1K, 448, EMA) on an ImageNet variant;
# children set the variant (eva02_reference.md 5, README:106-109): IN-1K 89.974, V2 82.430,
# ReaL 91.075, A 87.720, R 89.907, Sketch 70.131, ObjectNet 62.801 (IN-A / IN-R read their 200
# classes off the 1000-way head).
#   tools/test.py configs/classification/robustness/eva02-l-p14_448px_in1k-a.py CKPT
_base_ = '../eva02-l-p14_in21k-pre_16xb32-20e_in1k-448px.py'

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
