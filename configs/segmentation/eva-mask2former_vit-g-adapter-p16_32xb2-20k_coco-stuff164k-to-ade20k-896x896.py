# EVA-01 ADE20K (150 classes), fine-tuned from the COCO-Stuff-164K model: 20k iters,
# batch 64 (32 GPUs x 2), lr 2.5e-5, layer decay 0.95, warmup 500 + poly.
# Paper / official: 61.5 mIoU single-scale, 62.3 with `tools/test.py ... --tta`
# (eva_sem_seg_mask2former_ade_ss61p5_ms62p3.pth).
_base_ = './eva-mask2former_vit-g-adapter-p16_32xb1-60k_coco-stuff164k-896x896.py'

# the COCO-Stuff model (its 172-way class layer does not fit and is left at init)
load_from = 'work_dirs/eva-mask2former_vit-g-adapter-p16_32xb1-60k_coco-stuff164k-896x896/best_mIoU.pth'
num_classes = 150
model = dict(
    backbone=dict(vit=dict(init_cfg=None)),
    decode_head=dict(num_classes=num_classes,
                     loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])))

dataset_type = 'ADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016'
crop_size = (896, 896)
train_pipeline = {{_base_.seg_pipelines.ade896.train}}
eval_pipeline = {{_base_.seg_pipelines.ade896.test}}
tta_pipeline = {{_base_.seg_pipelines.ade896.tta}}
train_dataloader = dict(
    batch_size=2,
    dataset=dict(_delete_=True, type=dataset_type, data_root=data_root, pipeline=train_pipeline,
                 data_prefix=dict(img_path='images/training',
                                  seg_map_path='annotations/training')))
val_dataloader = dict(
    dataset=dict(_delete_=True, type=dataset_type, data_root=data_root, pipeline=eval_pipeline,
                 data_prefix=dict(img_path='images/validation',
                                  seg_map_path='annotations/validation')))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=2.5e-5))
max_iters = 20000
warmup_iters = 500
param_scheduler = {{_base_.schedules.poly20k_w500}}
train_cfg = dict(max_iters=max_iters)
auto_scale_lr = dict(enable=False, base_batch_size=64)
