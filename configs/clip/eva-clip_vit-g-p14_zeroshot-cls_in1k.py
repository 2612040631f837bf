# EVA-CLIP zero-shot ImageNet-1K val (50k). EVA-01: 78.53 top-1.
# Layout: data/imagenet/val/<wnid>/*.JPEG (or meta/val.txt), as mmpretrain's ImageNet.
_base_ = './_base_/eva-clip_vit-g-p14_zeroshot.py'
model = dict(classnames='imagenet')
test_dataloader = dict(dataset=dict(type='ImageNet', data_root='data/imagenet', split='val',
                                    pipeline={{_base_.image_pipeline}}))
