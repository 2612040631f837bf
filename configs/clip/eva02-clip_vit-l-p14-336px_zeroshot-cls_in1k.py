# EVA-02-CLIP-L/14-336 zero-shot ImageNet-1K val, with the data,
# classes and prompts of the EVA-01 config.
# Released (EVA-CLIP README): 80.4 top-1.
_base_ = ['./eva-clip_vit-g-p14_zeroshot-cls_in1k.py',
          './_base_/eva02-clip_vit-l-p14-336px.py']
model = {{_base_.eva02_clip_towers}}
load_from = {{_base_.eva02_clip_checkpoint}}
test_dataloader = dict(dataset=dict(pipeline={{_base_.image_pipeline_336}}))
