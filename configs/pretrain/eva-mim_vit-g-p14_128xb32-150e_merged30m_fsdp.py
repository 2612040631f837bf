# EVA-01 ViT-g/14 MIM with PyTorch FSDP2 (engine section: configs/pretrain/_base_/fsdp.py):
# parameters, gradients and AdamW states fully sharded, one unit per block (25.2M params
# each), bf16 compute with fp32 gradient reduction. Not what the paper used (DeepSpeed
# ZeRO-1, see the _deepspeed-zero1 variant); for GPUs with less memory.
#   tools/dist_train.sh configs/pretrain/eva-mim_vit-g-p14_128xb32-150e_merged30m_fsdp.py 8
#   --cfg-options strategy.reshard_after_forward=False   (ZeRO-2-like: faster, more memory)
# Multi-node, Slurm and memory per GPU: docs/distributed.md.
_base_ = ['./eva-mim_vit-g-p14_128xb32-150e_merged30m.py', './_base_/fsdp.py']

strategy = dict(param_dtype='bfloat16', reduce_dtype='float32')
# FSDP2 casts the gathered parameters to bf16 (no loss scale needed): a plain optimizer
# wrapper keeps the base recipe's AdamW, parameter groups and clipping.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer={{_base_.optim_wrapper.optimizer}},
    clip_grad={{_base_.optim_wrapper.clip_grad}},
    paramwise_cfg={{_base_.optim_wrapper.paramwise_cfg}})
