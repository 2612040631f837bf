# EVA-02-L UperNet on ADE20K at 640 (upernetpro_eva02_large_24_640_slide_80k.py; released
# `eva02_L_ade_seg_upernet_sz640`: 60.1 mIoU single-scale): crop 640 (pos_embed 14x14 -> 40x40,
# RoPE over 40x40 scaled to 16), Resize (2560, 640), slide 640 / 426, UperNet and FCN heads
# 1536 channels wide, otherwise the L 512 recipe.
_base_ = './eva02-l-p16_upernet_8xb2-80k_ade20k-512x512.py'

crop_size = (640, 640)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(img_size=crop_size),
    decode_head=dict(channels=1536),
    auxiliary_head=dict(channels=1536),
    test_cfg=dict(crop_size=crop_size, stride=(426, 426)))
train_pipeline = {{_base_.seg_pipelines.ade640.train}}
test_pipeline = {{_base_.seg_pipelines.ade640.test}}
tta_pipeline = None  # no multi-scale number was released for this model
tta_model = None
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
