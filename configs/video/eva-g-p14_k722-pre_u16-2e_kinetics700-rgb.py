# EVA-01 Kinetics-700 fine-tune (EVA-01/video/configs/kinetics700_ft.yaml) from the K722 model:
# as the K400 fine-tune (16 frames, lr 1e-6 constant, layer decay 0.95, drop path 0.2, label
# smoothing 0.1, total batch 256) but 2 epochs and the K700 rows of the K722 head.
# Test: 16 frames x 3 crops x 4 clips. EVA-01: top-1 82.9 (82.892).
#   python tools/model_converters/eva_to_mm.py eva_video_k722.pth checkpoints/eva/eva_video_k722_mm.pth
#   bash tools/dist_train.sh configs/video/eva-g-p14_k722-pre_u16-2e_kinetics700-rgb.py 8
#   python tools/model_converters/eva_to_mm.py eva_video_k700.pth checkpoints/eva/eva_video_k700_mm.pth
#   bash tools/dist_test.sh configs/video/eva-g-p14_k722-pre_u16-2e_kinetics700-rgb.py \
#       checkpoints/eva/eva_video_k700_mm.pth 8
_base_ = ['./eva-g-p14_k722-pre_u16-1e_kinetics400-rgb.py']

model = dict(cls_head=dict(num_classes=700,
                           class_mapping='data/kinetics722/k722_to_k700_mapping.npy'))
train_dataloader = dict(
    dataset=dict(ann_file='data/kinetics722/kinetics700_train_list_videos.txt'))
val_dataloader = dict(
    dataset=dict(ann_file='data/kinetics722/kinetics700_val_list_videos.txt'))
test_dataloader = dict(
    dataset=dict(ann_file='data/kinetics722/kinetics700_val_list_videos.txt'))

max_epochs = 2
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=max_epochs)]
train_cfg = dict(max_epochs=max_epochs)
