# EVA-01 Kinetics-722 intermediate fine-tune (EVA-01/video/configs/kinetics722_intermediate_ft.yaml)
# from the MIM checkpoint eva_psz14.pt: 8 frames (one per segment), 224 px, 40 epochs (5 warmup),
# lr 8e-6 -> 8e-8 cosine, no layer decay, drop path 0.3, mixup 0.8 / cutmix 1.0 (switch 0.5),
# label smoothing 0.1, AdamW betas (0.9, 0.98). Total batch 256 (128 GPUs x 2).
#   python tools/model_converters/eva_to_mm.py eva_psz14.pt checkpoints/eva/eva_psz14_mm.pth
#   bash tools/dist_train.sh configs/video/eva-g-p14_eva-mim-pre_u8-40e_kinetics722-rgb.py 8
#   (16 nodes x 8 GPUs in EVA-01; set the batch / --auto-scale-lr for other setups)
_base_ = ['./_base_/eva-g-p14_kinetics_runtime.py']

num_frames = 8
num_classes = 722
model = dict(
    backbone=dict(
        num_frames=num_frames, drop_path_rate=0.3,
        # image checkpoint: the 16x16 pos table is tiled over the 8 frames at load time; MIM's
        # mask_token / final norm are not used (mean pooling + a new fc_norm instead)
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/eva/eva_psz14_mm.pth',
                      prefix='backbone.')),
    cls_head=dict(num_classes=num_classes, label_smooth_eps=0.1),
    data_preprocessor=dict(blending=dict(
        type='RandomBatchAugment',
        augments=[dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
                  dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)],
        probs=[0.5, 0.5])))

train_pipeline = {{_base_.video_pipelines.u8.train}}
val_pipeline = {{_base_.video_pipelines.u8.val}}
test_pipeline = {{_base_.video_pipelines.u8.test}}

train_dataloader = dict(
    batch_size=2, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True), drop_last=True,
    dataset=dict(type='CheckedVideoDataset',
                 ann_file='data/kinetics722/kinetics722_train_list_videos.txt',
                 data_prefix=dict(video='data/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CheckedVideoDataset',
                 ann_file='data/kinetics722/kinetics722_val_list_videos.txt',
                 data_prefix=dict(video='data/'), pipeline=val_pipeline,
                 test_mode=True))
test_dataloader = dict(val_dataloader, batch_size=1,  # the val set, multi-view
                       dataset=dict(val_dataloader['dataset'], pipeline=test_pipeline))

max_epochs = 40
warmup_epochs = 5
optim_wrapper = dict(optimizer=dict(lr=8e-6), paramwise_cfg=dict(layer_decay_rate=1.0))
param_scheduler = [  # timm CosineLRScheduler, warmup prefix from 0, lr_min = lr / 100
    dict(type='LinearLR', start_factor=1e-8, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, T_max=max_epochs - warmup_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=1,
                 val_interval=1)
