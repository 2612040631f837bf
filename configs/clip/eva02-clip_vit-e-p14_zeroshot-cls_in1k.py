# EVA-02-CLIP-E/14 zero-shot ImageNet-1K val, with the data,
# classes and prompts of the EVA-01 config (the other 11 sets: copy an EVA-02-CLIP-L/14 config
# and change its model base). Released (EVA-CLIP README): 81.9 top-1.
_base_ = ['./eva-clip_vit-g-p14_zeroshot-cls_in1k.py',
          './_base_/eva02-clip_vit-e-p14.py']
model = {{_base_.eva02_clip_towers}}
load_from = {{_base_.eva02_clip_checkpoint}}
