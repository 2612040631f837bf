# Shared runtime of EVA-01 image classification (mmpretrain scope).
_base_ = 'mmpretrain::_base_/default_runtime.py'
custom_imports = dict(imports=['projects.eva.classification', 'projects.eva.engine'],
                      allow_failed_imports=False)

# EVA-01 classification normalises with the OpenAI-CLIP statistics (as in pretraining).
clip_mean = [0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255]
clip_std = [0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2, save_best='auto'))
randomness = dict(seed=0, diff_rank_seed=True)

# stop with the iteration and loss terms at the first NaN/inf loss
custom_hooks = [dict(type='FiniteLossHook')]
