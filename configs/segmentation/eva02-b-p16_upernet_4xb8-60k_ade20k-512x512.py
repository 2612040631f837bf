# EVA-02-B UperNet on ADE20K (EVA-02/seg configs/eva02/upernet/upernet_eva02_base_12_512_slide_
# 60k.py; released `eva02_B_ade_seg_upernet_sz512`: 55.3 mIoU single-scale). mmseg's BEiT
# UperNet (UPerHead pool scales 1/2/3/6, dropout 0.1, SyncBN, CE; FCN auxiliary head on the
# stride-16 map, weight 0.4; Feature2Pyramid neck) on EVAViT `eva02-base` at patch 16
# (`eva02_B_pt_in21k_p14to16`): the cls token is kept (RoPE skips it), pos_embed 14x14 -> 32x32
# once at load, RoPE over the 32x32 grid scaled to 16x16, no final norm, blocks 3/5/7/11 out.
# Feature2Pyramid computes the official backbone's fpn1..fpn4 (ConvT + SyncBN + GELU + ConvT,
# ConvT, identity, max-pool; all D channels): keys `neck.upsample_4x.{0,1,3}` and
# `neck.upsample_2x.0` for the official `backbone.fpn1.{0,1,3}` and `backbone.fpn2.0`.
_base_ = ['mmseg::_base_/models/upernet_beit.py', 'mmseg::_base_/datasets/ade20k.py',
          'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_80k.py',
          './_base_/crops_and_schedules.py']
custom_imports = dict(imports=['projects.eva.segmentation', 'projects.eva.engine'],
                      allow_failed_imports=False)

crop_size = (512, 512)
embed_dims = 768
data_preprocessor = dict(size=crop_size)  # ImageNet mean/std (mmseg's, as seg/)
model = dict(
    type='EVAEncoderDecoder',  # EncoderDecoder that names bad label values
    data_preprocessor=data_preprocessor,
    backbone=dict(
        _delete_=True, type='mmpretrain.EVAViT', arch='eva02-base', img_size=crop_size,
        patch_size=16, out_indices=[3, 5, 7, 11], out_type='featmap', final_norm=False,
        with_cls_token=True, drop_path_rate=0.15,
        init_cfg=dict(type='Pretrained', prefix='backbone.',
                      checkpoint='checkpoints/eva02/eva02_B_pt_in21k_p14to16_mm.pth')),
    neck=dict(embed_dim=embed_dims, rescales=[4, 2, 1, 0.5]),
    decode_head=dict(in_channels=[embed_dims] * 4, channels=768, num_classes=150),
    auxiliary_head=dict(in_channels=embed_dims, channels=256, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

# AdamW (0.9, 0.999) wd 0.05, fp16, no clipping; layer decay 0.85 over 12 blocks (cls token,
# pos_embed, patch_embed 0.85^13, block k 0.85^(12-k), neck and heads 1). As the official
# seg/mmcv_custom/layer_decay_optimizer_constructor.py: 1-D tensors and biases get no weight
# decay, but pos_embed and cls_token ARE decayed -- its no-decay test compares the names
# `pos_embed`/`cls_token` with the prefixed `backbone.pos_embed`/`backbone.cls_token`, which
# never match. We keep that behaviour (faithful to the released runs), as for EVA-01 seg.
optim_wrapper = dict(
    _delete_=True, type='AmpOptimWrapper', loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='EVALayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.85, no_decay_1d=True))

max_iters = 60000
param_scheduler = {{_base_.schedules.poly60k}}
train_cfg = dict(max_iters=max_iters, val_interval=1000)
default_hooks = dict(checkpoint=dict(interval=1000, max_keep_ckpts=4, save_best='mIoU'))
auto_scale_lr = dict(enable=False, base_batch_size=32)  # 4 GPUs x 8 images

train_pipeline = {{_base_.seg_pipelines.ade512.train}}
test_pipeline = {{_base_.seg_pipelines.ade512.test}}

# multi-scale + flip test (`tools/test.py --tta`; the official ms eval): SETR_Resize with
# ratios 0.5..1.75 sets the short side to max(ratio x 512, 512), the long side unbounded, so
# ratios below 1 repeat the 1.0 view (kept: they weigh the average as in the official eval)
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale=(1 << 20, int(max(r, 1.) * crop_size[0])), keep_ratio=True)
         for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='CheckedLoadAnnotations', reduce_zero_label=True)],
        [dict(type='PackSegInputs')]]),
]
train_dataloader = dict(batch_size=8, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
