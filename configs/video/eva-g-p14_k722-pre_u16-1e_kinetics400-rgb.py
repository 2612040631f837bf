# EVA-01 Kinetics-400 fine-tune (EVA-01/video/configs/kinetics400_ft.yaml) from the K722 model:
# 16 frames (the 8-frame pos table resized trilinearly at load time), lr 1e-6 constant, layer
# decay 0.95, drop path 0.2, label smoothing 0.1, no mixup/cutmix, 1 epoch, total batch 256
# (64 GPUs x 1 x 4 accumulation steps). The classifier starts from the K722 head rows of the
# K400 classes (k722_to_k400_mapping.npy from tools/misc/build_k722.py).
# Test: 16 frames x 3 crops x 4 clips, softmax scores averaged. EVA-01: top-1 89.7 (89.686).
#   python tools/model_converters/eva_to_mm.py eva_video_k722.pth checkpoints/eva/eva_video_k722_mm.pth
#   bash tools/dist_train.sh configs/video/eva-g-p14_k722-pre_u16-1e_kinetics400-rgb.py 8
#   python tools/model_converters/eva_to_mm.py eva_video_k400.pth checkpoints/eva/eva_video_k400_mm.pth
#   bash tools/dist_test.sh configs/video/eva-g-p14_k722-pre_u16-1e_kinetics400-rgb.py \
#       checkpoints/eva/eva_video_k400_mm.pth 8
_base_ = ['./_base_/eva-g-p14_kinetics_runtime.py']

num_frames = 16
model = dict(
    backbone=dict(num_frames=num_frames, drop_path_rate=0.2),
    cls_head=dict(num_classes=400, label_smooth_eps=0.1,
                  class_mapping='data/kinetics722/k722_to_k400_mapping.npy'))
load_from = 'checkpoints/eva/eva_video_k722_mm.pth'  # or your K722 run's epoch_40.pth

train_pipeline = {{_base_.video_pipelines.u16.train}}
val_pipeline = {{_base_.video_pipelines.u16.val}}
test_pipeline = {{_base_.video_pipelines.u16.test}}

train_dataloader = dict(
    batch_size=1, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True), drop_last=True,
    dataset=dict(type='CheckedVideoDataset',
                 ann_file='data/kinetics722/kinetics400_train_list_videos.txt',
                 data_prefix=dict(video='data/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CheckedVideoDataset',
                 ann_file='data/kinetics722/kinetics400_val_list_videos.txt',
                 data_prefix=dict(video='data/'), pipeline=val_pipeline, test_mode=True))
test_dataloader = dict(val_dataloader,  # the val set, multi-view
                       dataset=dict(val_dataloader['dataset'], pipeline=test_pipeline))

max_epochs = 1
optim_wrapper = dict(optimizer=dict(lr=1e-6), accumulative_counts=4,
                     paramwise_cfg=dict(layer_decay_rate=0.95))
param_scheduler = [  # WARMUP_START_LR = LR_MIN = LR: constant
    dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=max_epochs)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=1,
                 val_interval=1)
