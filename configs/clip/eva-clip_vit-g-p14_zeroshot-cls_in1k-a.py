# EVA-CLIP zero-shot ImageNet-A (7.5k images, 200 classes: the classifier holds only those
# 200 ImageNet classes). EVA-01: 73.59 top-1.
# Layout: data/imagenet-a/<wnid>/*.jpg (the released tarball, 200 wnid folders).
_base_ = './_base_/eva-clip_vit-g-p14_zeroshot.py'
model = dict(classnames='imagenet-a')
test_dataloader = dict(dataset=dict(type='CustomDataset', data_root='data/imagenet-a',
                                    with_label=True, pipeline={{_base_.image_pipeline}}))
