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


def _warmup_cosine(epochs, warmup):
    """EVA's MIM schedule: linear warmup from (numerically) 0, then cosine to 1e-5, both
    stepped per iteration."""
    return [dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup,
                 convert_to_iter_based=True),
            dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=warmup,
                 end=epochs, T_max=epochs - warmup, convert_to_iter_based=True)]


# EVA-01 (150 epochs, 2 warmup), EVA-02 (150, 1) and the two demos' (8, 1), (16, 1):
# ``param_scheduler = {{_base_.schedules.e<epochs>_w<warmup>}}``
schedules = dict(e150_w2=_warmup_cosine(150, 2), e150_w1=_warmup_cosine(150, 1),
                 e8_w1=_warmup_cosine(8, 1), e16_w1=_warmup_cosine(16, 1))
