# DINO with EVA-02-L (detrex dino_eva_02_vitdet_l_4attn_1024_lrd0p8_4scale_12ep.py; released
# `dino_eva_02_m38m_pretrain_vitdet_l_4attn_1024_lrd0p8_4scale_12ep.pth`: box AP 58.9 on
# val2017): the EVA-02-B DINO with `eva02-large` from the Merged-38M MIM weights, global blocks
# 5/11/17/23, window 16, drop path 0.4. detrex trained the L models with its projects/dino_eva/
# train_net.py, which ignores the config's layer decay: AdamW lr 2e-4, wd 1e-4, and lr 2e-5
# (x0.1) for the whole detectron2 backbone (the ViT and the simple feature pyramid, `neck.0`
# here) and for every `sampling_offsets` / `reference_points` parameter.
_base_ = './dino-4scale_eva02-b-p16_lsj-1024_16xb1-90k_coco.py'

model = dict(
    backbone=dict(arch='eva02-large', global_block_indices=(5, 11, 17, 23), drop_path_rate=0.4,
                  init_cfg=dict(checkpoint='checkpoints/eva02/eva02_L_pt_m38m_p14to16_mm.pth')),
    neck=[dict(type='SimpleFeaturePyramid', in_channels=1024, out_channels=256,
               scale_factors=(2.0, 1.0, 0.5), num_outs=4, norm_cfg=dict(type='LN2d', eps=1e-6)),
          {{_base_.channel_mapper}}])
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'backbone.': dict(lr_mult=0.1), 'neck.0.': dict(lr_mult=0.1),
                                    'sampling_offsets': dict(lr_mult=0.1),
                                    'reference_points': dict(lr_mult=0.1)}),
    clip_grad=dict(max_norm=0.1, norm_type=2))
