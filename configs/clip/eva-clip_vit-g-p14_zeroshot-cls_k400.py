# EVA-CLIP zero-shot Kinetics-400 val on the centre frame. EVA-01: 65.23 top-1.
# Layout (mmaction2): data/kinetics400/videos_val/*.mp4 + kinetics400_val_list_videos.txt;
# class names: label_map_k400.txt from mmaction2's tools/data/kinetics/ (one name per line).
_base_ = './_base_/video_centre_frame.py'
model = dict(classnames=dict(file='data/kinetics400/label_map_k400.txt'))
test_dataloader = dict(dataset=_base_.kinetics_val.k400)
