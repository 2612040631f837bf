# Fine-tune EVA-01 ViT-g/14 on your own ImageFolder classification data (docs/custom_data.md).
# Layout:  <data_root>/train/<class>/*.jpg  and  <data_root>/val/<class>/*.jpg
# Labels are the class folders in sorted order; `classes` names them (same count, same order).
# Init: tools/model_converters/eva_to_mm.py eva_21k_224px_psz14.pt checkpoints/eva/eva_21k_224px_psz14_mm.pth
# Everything else (336 px, layer decay 0.95, EMA, RandAugment...) is EVA-01's IN-1K recipe.
_base_ = '{{$EVA_CONFIGS:..}}/classification/eva-g-p14_32xb16-10e_in1k-336px.py'

# ---- your data
classes = ('class_a', 'class_b')
data_root = 'data/my_classification'
checkpoint = 'checkpoints/eva/eva_21k_224px_psz14_mm.pth'
# ---- your schedule
max_epochs, warmup_epochs = 10, 1
batch_size = 16  # per GPU

num_classes = len(classes)
data_preprocessor = dict(num_classes=num_classes)
model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint)),
             head=dict(num_classes=num_classes))
train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='train',
                 metainfo=dict(classes=classes), pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='val',
                 metainfo=dict(classes=classes), pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))  # top-5 needs at least 5 classes
test_evaluator = val_evaluator
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=True, begin=warmup_epochs,
         end=max_epochs, T_max=max_epochs - warmup_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs, max_keep_ckpts=1, save_best=None))
