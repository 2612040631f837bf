# Full fine-tuning of an EVAViT/14 classifier, the part EVA-01 and EVA-02 share (EVA-01
# eva/run_class_finetuning.py, EVA-02 asuka/run_class_finetuning.py): mean pooling + fc_norm
# (no final norm), frozen patch embedding (stop_grad_conv1), EVAClsHead (head x0.001) with
# label-smoothing CE, fp16 AdamW betas (0.9, 0.999) eps 1e-8 wd 0.05 (none on 1-D / pos_embed /
# cls_token) with layer decay, warmup from 0 then cosine per step to 0, EMA 0.9999.
# Recipes set: arch, img_size, drop path, the init checkpoint, in_channels, label smoothing,
# lr, layer decay, epochs / warmup (and the scheduler), batch, EMA or not.
_base_ = './in1k_data.py'

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='EVAViT', patch_size=14, out_type='avg_featmap', final_norm=False,
        freeze_patch_embed=True, init_cfg=dict(type='Pretrained', prefix='backbone.')),
    head=dict(type='EVAClsHead', num_classes=1000, init_scale=0.001,
              loss=dict(type='LabelSmoothLoss', mode='original')),
)

optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic',
    optimizer=dict(type='AdamW', betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    constructor='EVALayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(no_decay_1d=True, no_decay_keys=('pos_embed', 'cls_token')))


def _warmup_cosine(epochs, warmup, eta_min=0.):
    """Linear warmup from 0 over ``warmup`` epochs, then cosine to ``eta_min``, per step."""
    return [
        dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup,
             convert_to_iter_based=True),
        dict(type='CosineAnnealingLR', eta_min=eta_min, by_epoch=True, begin=warmup,
             end=epochs, T_max=epochs - warmup, convert_to_iter_based=True),
    ]


# the (epochs, warmup) of every recipe, written once: ``{{_base_.schedules.e<epochs>_w<warmup>}}``
schedules = {f'e{e}_w{w}': _warmup_cosine(e, w)
             for e, w in ((10, 2), (15, 2), (20, 2), (30, 1), (30, 3), (40, 1), (100, 5))}
schedules['e60_w15'] = _warmup_cosine(60, 15, eta_min=1e-6)  # EVA-01 IN-21K: cosine to 1e-6
max_epochs, warmup_epochs = 30, 3
param_scheduler = schedules['e30_w3']
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# EMA 0.9999 (mmengine's momentum is 1 - decay) where the release trained with it
custom_hooks = [dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL'),
                dict(type='FiniteLossHook')]
