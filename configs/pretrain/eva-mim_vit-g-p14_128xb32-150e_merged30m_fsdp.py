# EVA-01 ViT-g/14 MIM with PyTorch FSDP (mmengine FlexibleRunner + FSDPStrategy): params,
# grads and AdamW states fully sharded, one FSDP unit per transformer block (each ViT-g
# block has 25.2M params), fp16 autocast with a sharded dynamic loss scaler (same 2**16 /
# 500-step schedule as the base recipe). Not what the paper used (DeepSpeed ZeRO-1, see the
# _deepspeed-zero1 variant); for GPUs with less memory.
#   tools/dist_train.sh configs/pretrain/eva-mim_vit-g-p14_128xb32-150e_merged30m_fsdp.py 8
#   --cfg-options strategy.model_wrapper.sharding_strategy=SHARD_GRAD_OP   (ZeRO-2-like)
_base_ = './eva-mim_vit-g-p14_128xb32-150e_merged30m.py'

runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(
        sharding_strategy='FULL_SHARD',
        auto_wrap_policy=dict(
            type='torch.distributed.fsdp.wrap.size_based_auto_wrap_policy',
            min_num_params=int(1e7)),
        use_orig_params=True),  # keeps the per-parameter no-decay groups valid
    state_dict_cfg='full',  # checkpoints hold the whole model, loadable without FSDP
)
optim_wrapper = dict(use_fsdp=True)  # AmpOptimWrapper -> ShardedGradScaler
