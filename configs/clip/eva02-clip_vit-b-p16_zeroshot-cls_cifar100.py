# EVA-02-CLIP-B/16 zero-shot CIFAR-100, with the data,
# classes and prompts of the EVA-01 config. No released number for this set.
_base_ = ['./eva-clip_vit-g-p14_zeroshot-cls_cifar100.py',
          './_base_/eva02-clip_vit-b-p16.py']
model = {{_base_.eva02_clip_towers}}
load_from = {{_base_.eva02_clip_checkpoint}}
