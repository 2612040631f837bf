# EVA-CLIP zero-shot ImageNet-Sketch (50.9k, 1000 classes). EVA-01: 67.31 top-1.
# Layout: data/imagenet-sketch/sketch/<wnid>/*.JPEG (1000 wnid folders = ImageNet order).
_base_ = './_base_/eva-clip_vit-g-p14_zeroshot.py'
model = dict(classnames='imagenet')
test_dataloader = dict(dataset=dict(type='CustomDataset', data_root='data/imagenet-sketch',
                                    data_prefix='sketch', with_label=True,
                                    pipeline={{_base_.image_pipeline}}))
