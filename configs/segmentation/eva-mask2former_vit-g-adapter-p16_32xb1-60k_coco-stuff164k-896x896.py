# EVA-01 COCO-Stuff-164K (171 classes): ViT-Adapter + Mask2Former, 896 crop, 60k iters,
# batch 32 (32 GPUs x 1), AdamW lr 1.5e-5, layer decay 0.95, warmup 1500 + poly.
# Paper / official: 53.4 mIoU single-scale (eva_sem_seg_mask2former_cocostuff_53p4.pth).
_base_ = ['mmseg::_base_/default_runtime.py', './_base_/eva-mask2former_vit-g-adapter-p16-896.py']

dataset_type = 'COCOStuffDataset'
data_root = 'data/coco_stuff164k'  # mmseg layout: images/{train,val}2017, annotations/*_labelTrainIds.png
crop_size = (896, 896)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CheckedLoadAnnotations'),
    dict(type='RandomResize', scale=(3584, 896), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
eval_pipeline = [  # short side 896, then a multiple of 32; sliding window in the model
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(3584, 896), keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='CheckedLoadAnnotations'),
    dict(type='PackSegInputs'),
]
# --tta: EVA-01's multi-scale + flip test (scales 512..1280 over 896)
img_ratios = [512 / 896, 640 / 896, 768 / 896, 1.0, 1024 / 896, 1152 / 896, 1280 / 896]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale=(int(3584 * r), int(896 * r)), keep_ratio=True)
         for r in img_ratios],
        [dict(type='ResizeToMultiple', size_divisor=32)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='CheckedLoadAnnotations')],
        [dict(type='PackSegInputs')]]),
]
tta_model = dict(type='SegTTAModel')

train_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, pipeline=train_pipeline,
                 data_prefix=dict(img_path='images/train2017',
                                  seg_map_path='annotations/train2017')))
val_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, pipeline=eval_pipeline,
                 data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017')))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

max_iters = 60000
warmup_iters = 1500
# mmcv's poly-with-warmup = the product of both schedules from iteration 0 (they chain);
# mmengine's schedulers reach their end value at `end - 1`, hence the + 1
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters + 1),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=max_iters + 1),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000, max_keep_ckpts=10,
                    save_best='mIoU'))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=32)
