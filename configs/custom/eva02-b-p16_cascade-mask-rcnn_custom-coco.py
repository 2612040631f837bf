# Fine-tune EVA-02-B's Cascade Mask R-CNN on your own COCO-format detection / instance
# segmentation data (docs/custom_data.md).
# Layout:  <data_root>/annotations/{train,val}.json  (COCO: images, annotations with bbox and
#          segmentation polygons or RLE, categories)  and  <data_root>/{train,val}/*.jpg
# `classes` are the category names, in the order of their ids in the json.
# Init: the converted EVA-02-B MIM backbone (patch 16); the pyramid and heads start fresh:
#   python tools/model_converters/eva_to_mm.py eva02_B_pt_in21k_p14to16.pt checkpoints/eva02/eva02_B_pt_in21k_p14to16_mm.pth
# Everything else (LSJ 1024, layer decay 0.7, RoPE windows, bf16 here) is EVA-02-B's COCO
# recipe. One 24 GB GPU: batch 1 at 1024 px, activation checkpointing, bf16: 2.46 GiB of
# weights, grads, AdamW moments and backbone + pyramid activations (estimated on the meta
# device, not a GPU run; the RPN / RoI heads' activations are not counted):
#   python tools/analysis_tools/estimate_memory.py configs/custom/eva02-b-p16_cascade-mask-rcnn_custom-coco.py
_base_ = '{{$EVA_CONFIGS:..}}/detection/eva02-b-p16_cascade-mask-rcnn_lsj-1024_128xb1-60k_coco.py'

# ---- your data
classes = ('class_a', 'class_b')
data_root = 'data/my_coco/'
train_ann, val_ann = 'annotations/train.json', 'annotations/val.json'
train_img, val_img = 'train/', 'val/'
checkpoint = 'checkpoints/eva02/eva02_B_pt_in21k_p14to16_mm.pth'
# ---- your schedule
max_iters, warmup_iters = 5000, 250
batch_size = 1  # per GPU

num_classes = len(classes)
metainfo = dict(classes=classes)
model = dict(backbone=dict(with_cp=True, init_cfg=dict(checkpoint=checkpoint)), roi_head=dict(
    # the base's three stage heads with num_classes (a list replaces the base's, so copy it)
    bbox_head=[dict(head, num_classes=num_classes) for head in _base_.model.roi_head.bbox_head],
    mask_head=dict(num_classes=num_classes)))
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16')
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
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, gamma=0.1,
         milestones=[max_iters * 8 // 10, max_iters * 9 // 10]),
]
default_hooks = dict(checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
