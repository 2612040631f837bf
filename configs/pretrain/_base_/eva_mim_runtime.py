# Shared runtime of EVA-01 MIM pretraining (mmpretrain scope).
_base_ = 'mmpretrain::_base_/default_runtime.py'
custom_imports = dict(imports=['projects.eva.pretrain', 'projects.eva.engine'],
                      allow_failed_imports=False)

# EVA-01 MIM normalises student and teacher views with the OpenAI-CLIP statistics.
clip_mean = [0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255]
clip_std = [0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255]
data_preprocessor = dict(type='SelfSupDataPreprocessor', mean=clip_mean, std=clip_std,
                         to_rgb=True)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
# stop with the iteration and loss terms at the first NaN/inf loss
custom_hooks = [dict(type='FiniteLossHook')]
