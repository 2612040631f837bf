# EVA-CLIP (EVA-01, eva_clip_psz14.pt) zero-shot classification: shared model + runtime.
# Image tower: EVA ViT-g/14 (final LN, cls token) + Linear(1408 -> 1024, bias); text tower:
# width 768, 12 layers, 12 heads, context 77, vocab 49408, GELU, causal, EOT pooling,
# projection 768 -> 1024. Eval: Resize(224, bicubic) + CenterCrop(224), CLIP mean/std, class
# embedding = mean over prompt templates (re-normalised), logits = 100 * cos.
# Convert the release first:
#   python tools/model_converters/eva_to_mm.py eva_clip_psz14.pt checkpoints/eva/eva_clip_psz14_mm.pth
default_scope = 'mmpretrain'
custom_imports = dict(imports=['projects.eva.clip'], allow_failed_imports=False)

clip_mean = [0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255]
clip_std = [0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255]

model = dict(
    type='EVACLIP',
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=clip_mean, std=clip_std,
                           to_rgb=True),
    vision_backbone=dict(type='EVAViT', arch='giant', img_size=224, patch_size=14,
                         out_type='cls_token', final_norm=True, norm_eps=1e-6),
    text_backbone=dict(type='EVACLIPTextTransformer', vocab_size=49408, context_length=77,
                       width=768, layers=12, heads=12, embed_dim=1024, act='gelu'),
    tokenizer=dict(type='EVACLIPTokenizer', context_length=77),
    templates='openai_imagenet',  # the 80 OpenAI ImageNet prompts
    zero_shot_scale=100.,
)
load_from = 'checkpoints/eva/eva_clip_psz14_mm.pth'

image_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='ResizeEdge', scale=224, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
test_dataloader = dict(
    batch_size=64, num_workers=8, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False))
test_evaluator = dict(type='Accuracy', topk=(1, 5))
test_cfg = dict()

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
)
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
resume = False
randomness = dict(seed=0, deterministic=False)
