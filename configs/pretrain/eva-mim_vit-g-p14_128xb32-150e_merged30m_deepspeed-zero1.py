# EVA-01 ViT-g/14 MIM on DeepSpeed, as the paper trained it: ZeRO stage 1 (optimizer states
# sharded), fp16 with DeepSpeed's dynamic loss scale (2**16 initial, 500-step window,
# hysteresis 2, min scale 1), gradient clipping 3.0, reduce buckets of 5e8 -- through
# mmengine's FlexibleRunner + DeepSpeedStrategy. Everything else is the base recipe.
#   tools/dist_train.sh configs/pretrain/eva-mim_vit-g-p14_128xb32-150e_merged30m_deepspeed-zero1.py 8
# Other ZeRO stages / activation checkpointing from the command line:
#   --cfg-options strategy.zero_optimization.stage=2 model.backbone.with_cp=True
# Needs `pip install deepspeed` (DS_BUILD_OPS=0 is enough: the fused Adam is optional).
# Memory per GPU: tools/analysis_tools/estimate_memory.py (docs/performance.md).
_base_ = './eva-mim_vit-g-p14_128xb32-150e_merged30m.py'

runner_type = 'FlexibleRunner'
strategy = dict(
    type='DeepSpeedStrategy',
    fp16=dict(enabled=True, auto_cast=False, loss_scale=0, initial_scale_power=16,
              loss_scale_window=500, hysteresis=2, min_loss_scale=1),
    inputs_to_half=['inputs'],  # EVA-01 feeds the student .half() images
    zero_optimization=dict(stage=1, reduce_bucket_size=int(5e8),
                           allgather_bucket_size=int(5e8), overlap_comm=True,
                           contiguous_gradients=True, reduce_scatter=True),
    gradient_clipping=3.0,
)
# DeepSpeed owns loss scaling and clipping: the optimizer wrapper only builds the AdamW
# (with the base config's no-decay parameter groups).
optim_wrapper = dict(
    _delete_=True,
    type='DeepSpeedOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05),
    paramwise_cfg=dict(
        flat_decay_mult=0.0,
        custom_keys={'pos_embed': dict(decay_mult=0.), 'cls_token': dict(decay_mult=0.)}))
