# 1536 evaluation of the Objects365 model (BEiT-style rel-pos resizing from the 1024 tables).
_base_ = './cascade-rcnn_eva-g-p16_lsj-1024_128xb1-380k_objects365.py'

image_size = 1536
model = dict(data_preprocessor=dict(test_pad_size=(image_size, image_size)),
             backbone=dict(rel_pos_interp='beit'))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
