# DINO with EVA-02-B at 1536 (detrex dino_eva_02_vitdet_b_6attn_win32_1536_lrd0p7_4scale_12ep.py;
# released `dino_eva_02_in21k_pretrain_vitdet_b_6attn_win32_1536_lrd0p7_4scale_12ep.pth`: box AP
# 58.1 on val2017): the EVA-02-B 1024 recipe (lr 1e-4, layer decay 0.7) with LSJ and square pad
# at 1536, window 32 with global blocks 1/3/5/7/9/11, activation checkpointing.
_base_ = './dino-4scale_eva02-b-p16_lsj-1024_16xb1-90k_coco.py'

size = 1536
model = dict(
    data_preprocessor=dict(batch_augments=[dict(type='BatchFixedSizePad', size=(size, size))],
                           test_pad_size=(size, size)),
    backbone=dict(img_size=size, window_size=32, global_block_indices=(1, 3, 5, 7, 9, 11),
                  with_cp=True))
train_pipeline = {{_base_.lsj.box1536.train}}
test_pipeline = {{_base_.lsj.box1536.test}}
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
