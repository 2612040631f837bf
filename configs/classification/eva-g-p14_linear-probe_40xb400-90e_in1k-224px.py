# EVA-01 linear probing on IN-1K at 224 (shared spec 3.1, EVA-CLIP vision encoder row):
# cls token after the final LayerNorm -> BatchNorm1d(affine=False, eps 1e-6) -> Linear
# (std 0.01); the whole backbone is frozen. LARS (momentum 0.9, trust 1e-3), lr 1.0, wd 0,
# batch 16000 (40 GPUs x 400), 90 epochs (10 warmup), TF-style RandomResizedCrop + flip only.
# Paper: 86.462 (224), 86.498 (336, lr 0.6).
# Init: tools/model_converters/eva_to_mm.py eva_clip_psz14_vision_enc.pt checkpoints/eva/eva_clip_vision_enc_mm.pth --format eva-clip-vision
# (the released probe itself: eva_to_mm.py eva_clip_vis_enc_sz224_lincls_86p5.pth X.pth -> load_from / tools/test.py)
_base_ = './_base_/in1k_data.py'

img_size = 224
train_pipeline = {{_base_.in1k_pipelines.eva01_linear_probe_224.train}}
test_pipeline = {{_base_.in1k_pipelines.eva01_linear_probe_224.test}}
train_dataloader = dict(batch_size=400, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=400, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='EVAViT', arch='giant', img_size=img_size, patch_size=14,
        out_type='cls_token', final_norm=True, frozen_stages=40,
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/eva/eva_clip_vision_enc_mm.pth',
                      prefix='backbone.')),
    head=dict(type='EVALinearProbeHead', num_classes=1000, in_channels=1408,
              loss=dict(type='CrossEntropyLoss')),
)

optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic',
    optimizer=dict(type='LARS', lr=1.0, momentum=0.9, weight_decay=0., eta=1e-3))
max_epochs, warmup_epochs = 90, 10
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=True, begin=warmup_epochs,
         end=max_epochs, T_max=max_epochs - warmup_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=16000, enable=False)
