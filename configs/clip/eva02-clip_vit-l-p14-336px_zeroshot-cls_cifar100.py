# EVA-02-CLIP-L/14-336 zero-shot CIFAR-100, with the data,
# classes and prompts of the EVA-01 config. No released number for this set.
_base_ = ['./eva-clip_vit-g-p14_zeroshot-cls_cifar100.py',
          './_base_/eva02-clip_vit-l-p14-336px.py']
model = {{_base_.eva02_clip_towers}}
load_from = {{_base_.eva02_clip_checkpoint}}
test_dataloader = dict(dataset=dict(pipeline={{_base_.array_pipeline_336}}))
