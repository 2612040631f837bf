# EVA-01 COCO-Stuff-164K, variant B "relpos_layerscale_9dec"
# (seg/configs/coco_stuff164k/eva_mask2former_896_80k_cocostuff164k_ss_relpos_layerscale_9dec.py):
# the variant-A recipe plus a BEiT relative-position bias table (56x56 grid, zero-init) and
# layer scale (init 1.0) in every ViT block, 9 Mask2Former decoder layers; 80k iters, batch 32
# (16 GPUs x 2, as the official log), AdamW lr 1e-5, layer decay 0.95, warmup 1500 + poly.
# Paper / official: 53.2 mIoU single-scale
# (eva_sem_seg_mask2former_cocostuff_relpos_layerscale_9dec_53p2.pth).
_base_ = './eva-mask2former_vit-g-adapter-p16_32xb1-60k_coco-stuff164k-896x896.py'

model = dict(
    backbone=dict(vit=dict(use_rel_pos_bias=True, layer_scale_init_value=1.0)),
    decode_head=dict(transformer_decoder=dict(num_layers=9)))

train_dataloader = dict(batch_size=2)
optim_wrapper = dict(optimizer=dict(lr=1e-5))
max_iters = 80000
warmup_iters = 1500
param_scheduler = {{_base_.schedules.poly80k}}
train_cfg = dict(max_iters=max_iters)
