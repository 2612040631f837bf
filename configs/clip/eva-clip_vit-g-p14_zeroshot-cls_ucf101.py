# EVA-CLIP zero-shot UCF-101 (split-1 test list, 3783 videos) on the centre frame.
# EVA-01: 76.05 top-1. Class names: annotations/classInd.txt, CamelCase split into words.
# Layout (mmaction2): data/ucf101/videos/<Class>/v_*.avi, data/ucf101/ucf101_val_split_1_videos.txt
_base_ = './_base_/video_centre_frame.py'
model = dict(classnames=dict(file='data/ucf101/annotations/classInd.txt', camel_case=True))
test_dataloader = dict(dataset=dict(
    type='mmaction.VideoDataset', ann_file='data/ucf101/ucf101_val_split_1_videos.txt',
    data_prefix=dict(video='data/ucf101/videos'), pipeline={{_base_.video_pipeline}},
    test_mode=True))
