# EVA-CLIP zero-shot Kinetics-700 val on the centre frame. EVA-01: 58.4 top-1.
# Layout (mmaction2): data/kinetics700/videos_val/*.mp4 + kinetics700_val_list_videos.txt;
# class names: label_map_k700.txt from mmaction2's tools/data/kinetics/ (one name per line).
_base_ = './_base_/video_centre_frame.py'
model = dict(classnames=dict(file='data/kinetics700/label_map_k700.txt'))
test_dataloader = dict(dataset=_base_.kinetics_val.k700)
