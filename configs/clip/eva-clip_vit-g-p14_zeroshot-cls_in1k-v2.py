# EVA-CLIP zero-shot ImageNet-V2 (matched frequency, 10k). EVA-01: 71.52 top-1.
# Layout: data/imagenetv2/imagenetv2-matched-frequency-format-val/<0..999>/*.jpeg
_base_ = './_base_/eva-clip_vit-g-p14_zeroshot.py'
model = dict(classnames='imagenet')
test_dataloader = dict(dataset=dict(
    type='ImageNetV2', data_root='data/imagenetv2',
    data_prefix='imagenetv2-matched-frequency-format-val', pipeline={{_base_.image_pipeline}}))
