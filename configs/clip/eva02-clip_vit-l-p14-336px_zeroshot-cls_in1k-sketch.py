# EVA-02-CLIP-L/14-336 zero-shot ImageNet-Sketch, with the data,
# classes and prompts of the EVA-01 config. No released number for this set.
_base_ = ['./eva-clip_vit-g-p14_zeroshot-cls_in1k-sketch.py',
          './_base_/eva02-clip_vit-l-p14-336px.py']
model = {{_base_.eva02_clip_towers}}
load_from = {{_base_.eva02_clip_checkpoint}}
test_dataloader = dict(dataset=dict(pipeline={{_base_.image_pipeline_336}}))
