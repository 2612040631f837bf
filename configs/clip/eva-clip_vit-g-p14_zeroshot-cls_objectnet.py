# EVA-CLIP zero-shot ObjectNet: the 113 classes shared with ImageNet-1K (18.6k images), named
# and ordered by the dataset's own mappings/ files (CLIP_benchmark protocol). EVA-01: 72.33.
# Layout: data/objectnet/objectnet-1.0/{images/<folder>/*.png, mappings/*.json}
_base_ = './_base_/eva-clip_vit-g-p14_zeroshot.py'
objectnet_root = 'data/objectnet/objectnet-1.0'
model = dict(classnames=dict(objectnet=objectnet_root))
test_dataloader = dict(dataset=dict(type='ObjectNet', data_root=objectnet_root,
                                    pipeline={{_base_.image_pipeline}}))
