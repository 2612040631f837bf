# EVA-02-CLIP-L/14-336 (EVA02_CLIP_L_336_psz14_s6B.pt, 428,083,137 params): the L/14 towers
# at 336 px (24 x 24 tokens, RoPE positions i * 16 / 24), Resize(336, bicubic) +
# CenterCrop(336). The 336 pipelines replace the EVA-01 config's 224 ones (image folders,
# CIFAR arrays, video centre frame). Convert the release first:
#   python tools/model_converters/eva_to_mm.py EVA02_CLIP_L_336_psz14_s6B.pt checkpoints/eva02/EVA02_CLIP_L_336_psz14_s6B_mm.pth
_base_ = './eva02-clip_vit-l-p14.py'
eva02_clip_towers = dict(vision_backbone=dict(img_size=336))
eva02_clip_checkpoint = 'checkpoints/eva02/EVA02_CLIP_L_336_psz14_s6B_mm.pth'
resize_336 = [
    dict(type='ResizeEdge', scale=336, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=336),
]
image_pipeline_336 = [dict(type='LoadImageFromFile', imdecode_backend='pillow'),
                      *resize_336, dict(type='PackInputs')]
array_pipeline_336 = [*resize_336, dict(type='PackInputs')]  # CIFAR: decoded arrays
video_pipeline_336 = [
    dict(type='mmaction.DecordInit'),
    dict(type='mmaction.SampleFrames', clip_len=1, frame_interval=1, num_clips=1,
         test_mode=True),
    dict(type='mmaction.DecordDecode'),
    dict(type='VideoCentreFrame'),
    *resize_336,
    dict(type='PackInputs'),
]
