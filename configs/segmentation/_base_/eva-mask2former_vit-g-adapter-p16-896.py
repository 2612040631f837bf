# EVA-01 semantic segmentation model (seg/configs/*/eva_mask2former_896_*): EVA ViT-g/16
# inside the ViT-Adapter, mmseg's Mask2FormerHead with EVA-01's sizes. Shared by the
# COCO-Stuff and ADE20K configs. Weights (the released 14 -> 16 MIM file):
#   python tools/model_converters/eva_to_mm.py eva_psz14to16.pt \
#       checkpoints/eva/eva_psz14to16_mm.pth --format eva01-mim
_base_ = './crops_and_schedules.py'
custom_imports = dict(imports=['projects.eva.segmentation', 'projects.eva.engine'],
                      allow_failed_imports=False)

crop_size = (896, 896)
num_classes = 171
pretrained = 'checkpoints/eva/eva_psz14to16_mm.pth'  # eva_to_mm.py output (backbone.* keys)
norm_cfg = dict(type='SyncBN', requires_grad=True)

data_preprocessor = dict(  # ImageNet statistics in seg/ (not CLIP's)
    type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=crop_size,
    test_cfg=dict(size_divisor=32))

model = dict(
    type='EVAEncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='EVAAdapter',
        vit=dict(
            type='mmpretrain.EVAViT', arch='giant', img_size=896, patch_size=16,
            out_type='raw', final_norm=False, with_cls_token=True, qv_bias=True,
            drop_path_rate=0.5, norm_eps=1e-6, with_cp=True, init_std=0.02,
            # pos_embed 14x14 (psz14to16) -> 56x56 once at load (bicubic), as EVA-01
            init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
        interaction_indexes=[[0, 9], [10, 19], [20, 29], [30, 39]],
        conv_inplane=64, deform_num_heads=16, n_points=4, deform_ratio=0.5, cffn_ratio=0.25,
        drop_path_rate=0.5, inj_init_values=0., add_vit_feature=True, norm_cfg=norm_cfg,
        with_cp=True),
    decode_head=dict(
        type='Mask2FormerHead',
        in_channels=[1408, 1408, 1408, 1408], strides=[4, 8, 16, 32],
        feat_channels=1024, out_channels=1024, num_classes=num_classes, num_queries=200,
        num_transformer_feat_level=3, align_corners=False,
        pixel_decoder=dict(
            type='mmdet.MSDeformAttnPixelDecoder', num_outs=3,
            norm_cfg=dict(type='GN', num_groups=32), act_cfg=dict(type='ReLU'),
            encoder=dict(num_layers=6, layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=1024, num_heads=32, num_levels=3, num_points=4,
                                   im2col_step=64, dropout=0.0, batch_first=True,
                                   norm_cfg=None, init_cfg=None),
                ffn_cfg=dict(embed_dims=1024, feedforward_channels=4096, num_fcs=2,
                             ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True))),
                init_cfg=None),
            positional_encoding=dict(num_feats=512, normalize=True), init_cfg=None),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=512, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True, num_layers=8,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=1024, num_heads=32, attn_drop=0.0,
                                   proj_drop=0.0, dropout_layer=None, batch_first=True),
                cross_attn_cfg=dict(embed_dims=1024, num_heads=32, attn_drop=0.0,
                                    proj_drop=0.0, dropout_layer=None, batch_first=True),
                ffn_cfg=dict(embed_dims=1024, feedforward_channels=4096, num_fcs=2,
                             act_cfg=dict(type='ReLU', inplace=True), ffn_drop=0.0,
                             dropout_layer=None, add_identity=True)),
            init_cfg=None),
        loss_cls=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
                      reduction='mean', class_weight=[1.0] * num_classes + [0.1]),
        loss_mask=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                       loss_weight=5.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True,
                       reduction='mean', naive_dice=True, eps=1.0, loss_weight=5.0),
        train_cfg=dict(
            num_points=12544, oversample_ratio=3.0, importance_sample_ratio=0.75,
            assigner=dict(type='mmdet.HungarianAssigner', match_costs=[
                dict(type='mmdet.ClassificationCost', weight=2.0),
                dict(type='mmdet.CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                dict(type='mmdet.DiceCost', weight=5.0, pred_act=True, eps=1.0)]),
            sampler=dict(type='mmdet.MaskPseudoSampler'))),
    train_cfg=dict(),
    # sliding window 896 / stride 512; crops smaller than 896 (multi-scale test) are padded
    # to 896 and the padding cut from the logits (EVA-01's PadShortSide + ...Mask2FormerAug)
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(512, 512), pad_crops=True))

# AdamW + EVA-01 layer decay (0.95 over 40 blocks: embeddings 0.95^41, block k 0.95^(40-k),
# adapter / head 1). EVA-01 quirks kept: pos_embed/cls_token ARE weight-decayed (only 1-D
# tensors and biases are not), and the Mask2Former query/level/class/mask embeddings get
# layer id 0 (lr x 0.95^41), as seg/mmcv_custom/layer_decay_optimizer_constructor.py does.
lowest = 0.95 ** 41
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-5, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='EVALayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.95, no_decay_1d=True,
        custom_keys={f'decode_head.{k}': dict(lr_mult=lowest)
                     for k in ('query_embed', 'query_feat', 'level_embed', 'cls_embed',
                               'mask_embed')}))
