# DINO with EVA-02-L at 1280 (detrex dino_eva_02_vitdet_l_4attn_1280_lrd0p8_4scale_12ep.py;
# released `dino_eva_02_m38m_pretrain_vitdet_l_4attn_1280_lrd0p8_4scale_12ep.pth`: box AP 59.8
# on val2017): the EVA-02-L 1024 recipe with LSJ and square pad at 1280 (80x80 tokens, 5x5
# windows of 16) and activation checkpointing.
_base_ = './dino-4scale_eva02-l-p16_lsj-1024_16xb1-90k_coco.py'

size = 1280
model = dict(
    data_preprocessor=dict(batch_augments=[dict(type='BatchFixedSizePad', size=(size, size))],
                           test_pad_size=(size, size)),
    backbone=dict(img_size=size, with_cp=True))
train_pipeline = {{_base_.lsj.box1280.train}}
test_pipeline = {{_base_.lsj.box1280.test}}
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
