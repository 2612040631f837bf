# Smaller budget: EVA-L/16 (24 blocks, 1024 wide; EVA-L MIM weights `eva_l_psz14.pt` after
# the 14 -> 16 patch conversion) at LSJ 1024, global attention in blocks 5/11/17/23 (ViTDet-L),
# layer decay 0.8, drop path 0.4, lr 1e-4 (ViTDet-L recipe), same cascade and 45k schedule.
#   python tools/model_converters/eva_to_mm.py eva_l_psz14.pt \
#       checkpoints/eva/eva_l_psz14to16_mm.pth --patch-size 16
_base_ = './cascade-mask-rcnn_eva-g-p16_lsj-1280_64xb1-45k_coco-seg.py'

train_size = 1024
image_size = 1024
load_from = None
model = dict(
    data_preprocessor=_base_.lsj.mask1024.pad,
    backbone=dict(arch='large', img_size=train_size, global_block_indices=(5, 11, 17, 23),
                  drop_path_rate=0.4,
                  init_cfg=dict(checkpoint='checkpoints/eva/eva_l_psz14to16_mm.pth')),
    neck=dict(in_channels=1024))
train_pipeline = {{_base_.lsj.mask1024.train}}
test_pipeline = {{_base_.lsj.mask1024.test}}
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=1e-4), paramwise_cfg=dict(layer_decay_rate=0.8))
