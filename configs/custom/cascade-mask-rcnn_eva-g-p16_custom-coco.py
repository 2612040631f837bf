# Fine-tune EVA-01's Cascade Mask R-CNN on your own COCO-format detection / instance
# segmentation data (docs/custom_data.md).
# Layout:  <data_root>/annotations/{train,val}.json  (COCO: images, annotations with bbox and
#          segmentation polygons or RLE, categories)  and  <data_root>/{train,val}/*.jpg
# `classes` are the category names, in the order of their ids in the json.
# Init: the converted COCO instance model (its class layers do not fit other classes and
# start from scratch; everything else loads):
#   tools/model_converters/eva_to_mm.py eva_coco_seg.pth checkpoints/eva/eva_coco_seg_mm.pth
# Everything else (1280 LSJ, layer decay 0.9, maskness, soft-NMS-free test) is EVA-01's recipe.
_base_ = '{{$EVA_CONFIGS:..}}/detection/cascade-mask-rcnn_eva-g-p16_lsj-1280_64xb1-45k_coco-seg.py'

# ---- your data
classes = ('class_a', 'class_b')
data_root = 'data/my_coco/'
train_ann, val_ann = 'annotations/train.json', 'annotations/val.json'
train_img, val_img = 'train/', 'val/'
load_from = 'checkpoints/eva/eva_coco_seg_mm.pth'
# ---- your schedule
max_iters, warmup_iters = 5000, 250
batch_size = 1  # per GPU

num_classes = len(classes)
metainfo = dict(classes=classes)
model = dict(backbone=dict(init_cfg=None), roi_head=dict(  # all weights come from load_from
    # the base's three stage heads with num_classes (a list replaces the base's, so copy it)
    bbox_head=[dict(head, num_classes=num_classes) for head in _base_.model.roi_head.bbox_head],
    mask_head=dict(num_classes=num_classes)))
train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file=train_ann,
                 data_prefix=dict(img=train_img)))
val_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file=val_ann,
                 data_prefix=dict(img=val_img)))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + val_ann)
test_evaluator = val_evaluator
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.89)], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
