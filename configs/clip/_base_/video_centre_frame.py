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


def _kinetics_val(n):
    """mmaction2's Kinetics-``n`` val layout: data/kinetics<n>/videos_val/*.mp4 and
    kinetics<n>_val_list_videos.txt."""
    return dict(type='mmaction.VideoDataset',
                ann_file=f'data/kinetics{n}/kinetics{n}_val_list_videos.txt',
                data_prefix=dict(video=f'data/kinetics{n}/videos_val'), pipeline=video_pipeline,
                test_mode=True)


# the Kinetics val sets: ``test_dataloader = dict(dataset=_base_.kinetics_val.k<n>)``
kinetics_val = dict(k400=_kinetics_val(400), k600=_kinetics_val(600), k700=_kinetics_val(700))
