# Demo: EVA-CLIP trained contrastively on CPU in ~2 minutes, then zero-shot classification.
# Image tower: a tiny EVAViT (4 blocks, 96 wide) at 64 px / patch 8, final LN + cls token +
# Linear projection; text tower: the EVA-CLIP text transformer shrunk to 2 layers x 64 wide
# with the real CLIP BPE tokenizer (vocab 49408, offline) and a 16-token context.
# Data (projects/eva/demo/synthetic_clip.py, written by tools/demo.py): 2400 rendered
# shapes with captions ("a small red circle at the top left") in open_clip's CSV layout;
# zero-shot test on 360 held-out images of the 18 colour-shape classes (chance 5.6%).
# The real EVA-CLIP model and runtime (configs/clip/_base_/eva-clip_vit-g-p14_zeroshot.py)
# with its sizes overridden; the real recipes are configs/clip/eva-clip_vit-g-p14_*.py.
_base_ = '../clip/_base_/eva-clip_vit-g-p14_zeroshot.py'

data_root = 'data/demo/clip'
img_size = 40
classnames = [
    'blue circle', 'blue square', 'blue triangle', 'green circle', 'green square',
    'green triangle', 'purple circle', 'purple square', 'purple triangle', 'red circle',
    'red square', 'red triangle', 'white circle', 'white square', 'white triangle',
    'yellow circle', 'yellow square', 'yellow triangle']

model = dict(
    vision_backbone=dict(
        arch=dict(_delete_=True, embed_dims=64, num_layers=3, num_heads=2,
                  feedforward_channels=256),
        img_size=img_size, patch_size=8, init_std=0.02),
    text_backbone=dict(context_length=16, width=64, layers=2, heads=2, embed_dim=64),
    tokenizer=dict(_delete_=True, type='EVACLIPTokenizer'),
    classnames=classnames,
    templates=['a photo of a {}', 'a {}', 'a picture of a {}'],
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs', algorithm_keys=['text']),
]
image_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=img_size, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CsvImageTextDataset', data_root=data_root,
                 ann_file='train/captions.tsv', data_prefix='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=120, num_workers=2, persistent_workers=True, pin_memory=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='test',
                 with_label=True, pipeline=image_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

max_epochs = 6
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0., custom_keys={
        'pos_embed': dict(decay_mult=0.), 'cls_token': dict(decay_mult=0.),
        'positional_embedding': dict(decay_mult=0.), 'logit_scale': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1, end=max_epochs,
         T_max=max_epochs - 1, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
load_from = None
# the same table twice on one machine (README, Demo results): seeded, deterministic kernels
randomness = dict(seed=0, deterministic=True)
