# Smallest budget: EVA-B/16-sized backbone (12 blocks, 768 wide; no EVA-01 base weights were
# released: initialise from any converted ViT-B MIM checkpoint), global attention in blocks
# 2/5/8/11, layer decay 0.7, drop path 0.1, lr 1e-4 (ViTDet-B recipe).
#   python tools/model_converters/eva_to_mm.py YOUR_VIT_B_MIM.pth \
#       checkpoints/eva/eva_b_p16_mm.pth --patch-size 16
_base_ = './cascade-mask-rcnn_eva-l-p16_lsj-1024_64xb1-45k_coco.py'

model = dict(
    backbone=dict(arch='base', global_block_indices=(2, 5, 8, 11), drop_path_rate=0.1,
                  init_cfg=dict(checkpoint='checkpoints/eva/eva_b_p16_mm.pth')),
    neck=dict(in_channels=768))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.7))
