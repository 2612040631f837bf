# The MIM demo on FSDP2 (fully_shard) through the giant recipe's engine section
# (configs/pretrain/_base_/fsdp.py), fp32, on CPU/gloo or GPUs:
#   tools/dist_train.sh configs/demo/eva-mim_vit-tiny-p14_2xb16-8e_shapes_fsdp.py 2
#   --cfg-options model.backbone.with_cp=True   (activation checkpointing inside the units)
# tests/engine/test_distributed.py: its losses equal the 2-process DDP run's, and a killed run
# resumes with --resume on the same losses.
_base_ = ['./eva-mim_vit-tiny-p14_1xb32-8e_shapes.py', '../pretrain/_base_/fsdp.py']

train_dataloader = dict(batch_size=16)  # x2 processes = the 1-process demo's batch of 32
# not a tools/demo.py stage: the sharded engines were not run under torch's deterministic mode
randomness = dict(deterministic=False)
