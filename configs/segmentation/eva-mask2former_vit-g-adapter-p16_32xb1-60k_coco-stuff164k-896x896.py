# EVA-01 COCO-Stuff-164K (171 classes): ViT-Adapter + Mask2Former, 896 crop, 60k iters,
# batch 32 (32 GPUs x 1), AdamW lr 1.5e-5, layer decay 0.95, warmup 1500 + poly.
# Paper / official: 53.4 mIoU single-scale (eva_sem_seg_mask2former_cocostuff_53p4.pth).
_base_ = ['mmseg::_base_/default_runtime.py', './_base_/eva-mask2former_vit-g-adapter-p16-896.py']

dataset_type = 'COCOStuffDataset'
data_root = 'data/coco_stuff164k'  # mmseg layout: images/{train,val}2017, annotations/*_labelTrainIds.png
crop_size = (896, 896)
train_pipeline = {{_base_.seg_pipelines.cocostuff896.train}}
# short side 896, then a multiple of 32; sliding window in the model
eval_pipeline = {{_base_.seg_pipelines.cocostuff896.test}}
# --tta: EVA-01's multi-scale + flip test (scales 512..1280 over 896)
img_ratios = [512 / 896, 640 / 896, 768 / 896, 1.0, 1024 / 896, 1152 / 896, 1280 / 896]
tta_pipeline = {{_base_.seg_pipelines.cocostuff896.tta}}
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
param_scheduler = {{_base_.schedules.poly60k}}
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000, max_keep_ckpts=10,
                    save_best='mIoU'))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=32)
