# DINO with EVA-02-L from the Objects365-tuned backbone (detrex
# dino_eva_02_vitdet_l_8attn_1536_lrd0p8_4scale_12ep.py with `eva02_L_m38m_to_o365`; released
# `dino_eva_02_o365_backbone_finetune_vitdet_l_8attn_lsj_1536_4scale_12ep.pth`: box AP 61.6 on
# val2017). Only the backbone of the O365 detector is loaded (detrex README); LSJ and square pad
# at 1536, global blocks 2/5/8/11/14/17/20/23, window 16, drop path 0.3, activation
# checkpointing; the EVA-02-L DINO recipe otherwise.
#   python tools/model_converters/eva_to_mm.py eva02_L_m38m_to_o365.pth \
#       checkpoints/eva02/eva02_L_m38m_to_o365_mm.pth
_base_ = './dino-4scale_eva02-l-p16_lsj-1024_16xb1-90k_coco.py'

size = 1536
model = dict(
    data_preprocessor=dict(batch_augments=[dict(type='BatchFixedSizePad', size=(size, size))],
                           test_pad_size=(size, size)),
    backbone=dict(img_size=size, global_block_indices=(2, 5, 8, 11, 14, 17, 20, 23),
                  drop_path_rate=0.3, with_cp=True,
                  init_cfg=dict(checkpoint='checkpoints/eva02/eva02_L_m38m_to_o365_mm.pth')))
train_pipeline = {{_base_.lsj.box1536.train}}
test_pipeline = {{_base_.lsj.box1536.test}}
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
