# EVA-CLIP (EVA-01) contrastive training: EVA ViT-g/14 image tower initialised from EVA MIM,
# text tower from OpenAI CLIP-L/14, LAION-400M, global batch ~41k (256 GPUs x 160 = 40,960),
# 11B samples seen (~268.6k iters), fp16 (run with --amp), activation checkpointing,
# drop path 0.4 in the image tower.
# From the EVA-01 release (README / wandb note): architecture, init, data, batch, samples,
# GPUs, fp16, drop path. NOT in the EVA-01 release (training code lives in FlagAI / later
# EVA-CLIP/rei) and therefore open_clip's LAION recipe here: AdamW lr 5e-4, betas
# (0.9, 0.98), eps 1e-6, weight decay 0.2 (none on gains, biases and logit_scale), 2000
# warmup iters then cosine, RandomResizedCrop scale (0.9, 1.0).
#   python tools/model_converters/eva_to_mm.py eva_psz14.pt checkpoints/eva/eva_psz14_mm.pth
#   bash tools/dist_train.sh configs/clip/eva-clip_vit-g-p14_256xb160-11b_laion400m.py 8 --amp
_base_ = './_base_/eva-clip_vit-g-p14_zeroshot.py'

model = dict(
    vision_backbone=dict(
        drop_path_rate=0.4, with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/eva/eva_psz14_mm.pth',
                      prefix='backbone.')),
    # OpenAI's TorchScript ViT-L-14.pt (or any open_clip/OpenAI state dict with text keys);
    # its 768x768 text_projection does not fit 768x1024 and stays random.
    text_backbone=dict(pretrained='checkpoints/clip/ViT-L-14.pt'),
    gather_with_grad=False,
    classnames='imagenet',  # zero-shot ImageNet-1K validation
)
load_from = None

# Image-text pairs in open_clip's CSV layout (filepath<TAB>title), e.g. img2dataset output.
train_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.9, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='PackInputs', algorithm_keys=['text']),
]
train_dataloader = dict(
    batch_size=160, num_workers=10, persistent_workers=True, pin_memory=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CsvImageTextDataset', data_root='data/laion400m',
                 ann_file='train.tsv', data_prefix='', pipeline=train_pipeline))
# zero-shot ImageNet-1K during training (open_clip's --imagenet-val)
val_dataloader = dict(
    batch_size=64, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ImageNet', data_root='data/imagenet', split='val',
                 pipeline={{_base_.image_pipeline}}))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
val_cfg = dict()

max_iters = 268_555  # 11e9 samples / 40,960
optim_wrapper = dict(
    constructor='EVALayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2),
    paramwise_cfg=dict(layer_decay_rate=1.0, no_decay_1d=True, no_decay_keys=('logit_scale', )),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=False, begin=0, end=2000),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=False, begin=2000, end=max_iters,
         T_max=max_iters - 2000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10_000)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10_000,
                                     max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(base_batch_size=40_960)
test_dataloader = val_dataloader
test_evaluator = val_evaluator
