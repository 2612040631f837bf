# EVA-01 ADE20K, variant B "relpos_layerscale_9dec", fine-tuned from the variant-B COCO-Stuff
# model (seg/configs/ade20k/eva_mask2former_896_40k_coco164k2ade20k_{ss,ms}_relpos_layerscale_9dec.py):
# 40k iters, batch 32 (16 GPUs x 2, as the official log), AdamW lr 1e-5, layer decay 0.9
# (not 0.95), warmup 1500 + poly. Paper / official: 61.5 mIoU single-scale, 62.3 with
# `tools/test.py ... --tta` (eva_sem_seg_mask2former_ade_relpos_layerscale_9dec_ss61p5_ms62p3.pth).
_base_ = './eva-mask2former_vit-g-adapter-p16_32xb2-20k_coco-stuff164k-to-ade20k-896x896.py'

# the variant-B COCO-Stuff model (its 172-way class layer does not fit and is left at init)
load_from = 'work_dirs/eva-mask2former-9dec_vit-g-adapter-relpos-ls-p16_16xb2-80k_coco-stuff164k-896x896/best_mIoU.pth'
model = dict(
    backbone=dict(vit=dict(use_rel_pos_bias=True, layer_scale_init_value=1.0)),
    decode_head=dict(transformer_decoder=dict(num_layers=9)))

train_dataloader = dict(batch_size=2)
# layer decay 0.9: block k 0.9^(40-k), embeddings and EVA-01's layer-0 head embeddings 0.9^41
lowest = 0.9 ** 41
optim_wrapper = dict(
    optimizer=dict(lr=1e-5),
    paramwise_cfg=dict(
        layer_decay_rate=0.9,
        custom_keys={f'decode_head.{k}': dict(lr_mult=lowest)
                     for k in ('query_embed', 'query_feat', 'level_embed', 'cls_embed',
                               'mask_embed')}))
max_iters = 40000
warmup_iters = 1500
param_scheduler = {{_base_.schedules.poly40k}}
train_cfg = dict(max_iters=max_iters)
auto_scale_lr = dict(enable=False, base_batch_size=32)
