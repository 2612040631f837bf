# Lighter option (not an EVA-01 release): no ViT-Adapter. EVAViT returns blocks 10/20/30/40
# as 56x56 maps and mmseg's Feature2Pyramid turns them into strides 4/8/16/32 (deconv x4,
# deconv x2, identity, max-pool), then the same Mask2Former head and recipe. Replaces the
# SPM, 4 injectors and 6 extractors (and their high-resolution token maps) by 4 deconvs.
_base_ = './eva-mask2former_vit-g-adapter-p16_32xb1-60k_coco-stuff164k-896x896.py'

pretrained = 'checkpoints/eva/eva_psz14to16_mm.pth'
model = dict(
    backbone=dict(
        _delete_=True, type='mmpretrain.EVAViT', arch='giant', img_size=896, patch_size=16,
        out_indices=[9, 19, 29, 39], out_type='featmap', final_norm=False,
        with_cls_token=True, qv_bias=True, drop_path_rate=0.5, norm_eps=1e-6, with_cp=True,
        init_std=0.02,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(type='Feature2Pyramid', embed_dim=1408, rescales=[4, 2, 1, 0.5],
              norm_cfg=dict(type='SyncBN', requires_grad=True)))
