# 1536 evaluation of the Objects365 model (BEiT-style rel-pos resizing from the 1024 tables).
_base_ = './cascade-rcnn_eva-g-p16_lsj-1024_128xb1-380k_objects365.py'

image_size = 1536
model = dict(data_preprocessor=dict(test_pad_size=(image_size, image_size)),
             backbone=dict(rel_pos_interp='beit'))
test_pipeline = {{_base_.lsj.box1536.test}}
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
