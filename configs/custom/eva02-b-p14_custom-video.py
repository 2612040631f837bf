# Fine-tune EVA-02-B/14 on your own video classification data (docs/custom_data.md).
# Layout:  <data_root>/train_list_videos.txt and <data_root>/val_list_videos.txt, one line per
#          video, "<path relative to data_root> <label>" (mmaction2's VideoDataset lists, as
#          Kinetics), label k = classes[k]; videos anywhere under <data_root> (.mp4, .avi, ...).
# Init: the EVA-02-B MIM model (as EVA-01 video starts from its MIM model); its 16x16
# position table is tiled over the 8 frames at load time and each frame gets the 2-D RoPE of
# the image model (frame order is learnt by the tiled table, as in EVA-01 video):
#   python tools/model_converters/eva_to_mm.py eva02_B_pt_in21k_p14.pt checkpoints/eva02/eva02_B_pt_in21k_p14_mm.pth
# EVA-02 released no video model, so this recipe is assembled, not reproduced: the video
# model, 8-frame sampling, augmentations and 12-view test of EVA-01 video
# (configs/video/_base_/eva-g-p14_kinetics_runtime.py) with the optimiser of EVA-02-B's
# MIM -> IN-1K fine-tune (configs/classification/eva02-b-p14_16xb64-30e_in1k-448px.py: AdamW
# lr 1e-4, betas (0.9, 0.999), layer decay 0.7, drop path 0.1, label smoothing 0.1, frozen
# patch embedding, OpenAI-CLIP mean/std). No accuracy has been measured with it.
# One 24 GB GPU: batch 8 clips of 8 x 224^2, activation checkpointing, bf16 (Ampere or newer):
# see docs/custom_data.md for the estimate, from
#   python tools/analysis_tools/estimate_memory.py configs/custom/eva02-b-p14_custom-video.py
_base_ = '{{$EVA_CONFIGS:..}}/video/_base_/eva-g-p14_kinetics_runtime.py'

# ---- your data
classes = ('class_a', 'class_b')
data_root = 'data/my_videos'
checkpoint = 'checkpoints/eva02/eva02_B_pt_in21k_p14_mm.pth'
# ---- your schedule
max_epochs, warmup_epochs = 30, 3
batch_size = 8  # clips per GPU

num_frames = 8
num_classes = len(classes)
model = dict(
    backbone=dict(
        arch='eva02-base', num_frames=num_frames, drop_path_rate=0.1,
        fp32_attn_and_norm=False, freeze_patch_embed=True, with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    cls_head=dict(num_classes=num_classes, in_channels=768, label_smooth_eps=0.1),
    data_preprocessor=dict(mean=[0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255],
                           std=[0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255]))
optim_wrapper = dict(
    dtype='bfloat16',
    optimizer=dict(lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.7))

metainfo = dict(classes=classes)
train_dataloader = dict(
    batch_size=batch_size, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True), drop_last=True,
    dataset=dict(type='CheckedVideoDataset', ann_file=data_root + '/train_list_videos.txt',
                 data_prefix=dict(video=data_root), metainfo=metainfo,
                 pipeline={{_base_.video_pipelines.u8.train}}))
val_dataloader = dict(
    batch_size=batch_size, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CheckedVideoDataset', ann_file=data_root + '/val_list_videos.txt',
                 data_prefix=dict(video=data_root), metainfo=metainfo,
                 pipeline={{_base_.video_pipelines.u8.val}}, test_mode=True))
test_dataloader = dict(val_dataloader, batch_size=1,  # the val set, 12 views per video
                       dataset=dict(val_dataloader['dataset'],
                                    pipeline={{_base_.video_pipelines.u8.test}}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=True, begin=warmup_epochs,
         end=max_epochs, T_max=max_epochs - warmup_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=1,
                 val_interval=1)
auto_scale_lr = dict(enable=False, base_batch_size=1024)  # EVA-02-B's IN-1K batch
