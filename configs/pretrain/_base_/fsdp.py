# PyTorch FSDP2 (torch.distributed.fsdp.fully_shard) through mmengine's FlexibleRunner and
# EVAFullyShardStrategy (projects/eva/engine/strategies.py; mmengine 0.10.7's FSDPStrategy
# drives FSDP1 on CUDA devices only): parameters, gradients and AdamW states sharded over
# the ranks, one FSDP unit per transformer block (`Block`), full-state checkpoints loadable
# without FSDP. The demo variant (configs/demo/*_fsdp.py) trains through this same section.
runner_type = 'FlexibleRunner'
strategy = dict(
    type='EVAFullyShardStrategy',
    shard_modules=['Block'],
    reshard_after_forward=True,  # False: keep gathered params until backward (ZeRO-2-like)
)
