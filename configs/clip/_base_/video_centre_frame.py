# Zero-shot video classification on the centre frame (EVA-01: "single center frame"):
# mmaction2 decodes frame num_frames // 2, then the image pipeline of the zero-shot base.
_base_ = './eva-clip_vit-g-p14_zeroshot.py'
video_pipeline = [
    dict(type='mmaction.DecordInit'),
    dict(type='mmaction.SampleFrames', clip_len=1, frame_interval=1, num_clips=1,
         test_mode=True),
    dict(type='mmaction.DecordDecode'),
    dict(type='VideoCentreFrame'),
    dict(type='ResizeEdge', scale=224, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
