# EVA-CLIP zero-shot Kinetics-600 val on the centre frame. EVA-01: 64.38 top-1.
# Layout (mmaction2): data/kinetics600/videos_val/*.mp4 + kinetics600_val_list_videos.txt;
# class names: label_map_k600.txt from mmaction2's tools/data/kinetics/ (one name per line).
_base_ = './_base_/video_centre_frame.py'
model = dict(classnames=dict(file='data/kinetics600/label_map_k600.txt'))
test_dataloader = dict(dataset=_base_.kinetics_val.k600)
