# ImageNet-ReaL: the flat IN-1K val images + real.json (github.com/google-research/reassessed-imagenet)
_base_ = '../_base_/eva-g-p14_336px_robustness.py'
variant = 'real'
data_root = 'data/imagenet'   # data/imagenet/val/ILSVRC2012_val_*.JPEG (flat) and data/imagenet/real.json
test_pipeline = {{_base_.in1k_pipelines.eva01_336.real}}
test_dataloader = dict(dataset=dict(variant=variant, data_root=data_root,
                                    pipeline=test_pipeline))
test_evaluator = dict(prefix=f'in1k-{variant}')
