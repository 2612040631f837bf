# EVA-02-CLIP-B/16 zero-shot ImageNet-1K val, with the data,
# classes and prompts of the EVA-01 config.
# Released (EVA-CLIP README): 74.7 top-1.
_base_ = ['./eva-clip_vit-g-p14_zeroshot-cls_in1k.py',
          './_base_/eva02-clip_vit-b-p16.py']
model = {{_base_.eva02_clip_towers}}
load_from = {{_base_.eva02_clip_checkpoint}}
