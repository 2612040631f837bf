# ImageNet data of EVA-01 / EVA-02 image classification (mmpretrain scope), written once:
# pillow bicubic resizing, OpenAI-CLIP mean/std, eval short-side Resize(size / crop_pct,
# crop_pct = 1.0) + CenterCrop(size). Recipes pick their pipelines from ``in1k_pipelines``
# (``{{_base_.in1k_pipelines.<recipe>.train|test|real}}``) and set their batch size; IN-21K
# recipes replace the train dataset and drop evaluation.
_base_ = './eva_cls_runtime.py'


def _pipelines(size, crop=(0.08, 1.0), rand_aug=True, erase=False):
    """(train, test, ImageNet-ReaL test) pipelines at ``size``: RandomResizedCrop over ``crop``
    (``None``: mmpretrain's default), flip, timm's rand-m9-mstd0.5-inc1, EVA-01's erasing."""
    rrc = dict(type='RandomResizedCrop', scale=size, backend='pillow', interpolation='bicubic')
    if crop is not None:
        rrc = dict(type='RandomResizedCrop', scale=size, crop_ratio_range=crop,
                   backend='pillow', interpolation='bicubic')
    train = [dict(type='LoadImageFromFile'), rrc,
             dict(type='RandomFlip', prob=0.5, direction='horizontal')]
    if rand_aug:
        train.append(dict(
            type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
            magnitude_level=9, magnitude_std=0.5,
            hparams=dict(pad_val=[104, 117, 123], interpolation='bicubic')))  # CLIP mean, BGR
    if erase:  # EVA-01 run_class_finetuning.py's default --reprob 0.25 (IN-1K keeps it)
        train.append(dict(type='RandomErasing', erase_prob=0.25, mode='rand',
                          min_area_ratio=0.02, max_area_ratio=1 / 3,
                          fill_color=[104.1, 116.7, 122.8],
                          fill_std=[70.3, 66.6, 68.5]))  # CLIP mean/std, BGR
    train.append(dict(type='PackInputs'))
    resize = [dict(type='LoadImageFromFile'),
              dict(type='ResizeEdge', scale=size, edge='short', backend='pillow',
                   interpolation='bicubic'),
              dict(type='CenterCrop', crop_size=size)]
    return dict(train=train, test=resize + [dict(type='PackInputs')],
                real=resize + [dict(type='PackInputs', algorithm_keys=['real_labels'])])


# every recipe's pipelines (EVA-01: erasing, IN-21K RRC (0.5, 1); EVA-02: no erasing, IN-21K
# RRC (0.2, 1); the linear probe: TF-style RandomResizedCrop + flip only)
in1k_pipelines = dict(
    eva01_336=_pipelines(336, erase=True), eva01_560=_pipelines(560, erase=True),
    eva01_in21k_224=_pipelines(224, crop=(0.5, 1.0)),
    eva01_linear_probe_224=_pipelines(224, crop=None, rand_aug=False),
    eva02_336=_pipelines(336), eva02_448=_pipelines(448),
    eva02_in21k_448=_pipelines(448, crop=(0.2, 1.0)))

data_preprocessor = dict(num_classes=1000, mean={{_base_.clip_mean}}, std={{_base_.clip_std}},
                         to_rgb=True)
train_dataloader = dict(
    batch_size=32, num_workers=10, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root='data/imagenet', split='train', pipeline=[]))
val_dataloader = dict(
    batch_size=32, num_workers=10, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root='data/imagenet', split='val', pipeline=[]))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader, test_evaluator = val_dataloader, val_evaluator
