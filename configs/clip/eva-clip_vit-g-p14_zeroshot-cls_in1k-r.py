# EVA-CLIP zero-shot ImageNet-R (30k renditions, 200 classes). EVA-01: 92.5 top-1.
# Layout: data/imagenet-r/<wnid>/*.jpg (the released tarball, 200 wnid folders).
_base_ = './_base_/eva-clip_vit-g-p14_zeroshot.py'
model = dict(classnames='imagenet-r')
test_dataloader = dict(dataset=dict(type='CustomDataset', data_root='data/imagenet-r',
                                    with_label=True, pipeline={{_base_.image_pipeline}}))
