# The MIM demo on DeepSpeed ZeRO-1 through the giant recipe's engine section
# (configs/pretrain/_base_/deepspeed-zero1.py), in fp32 (DeepSpeed's fp16 needs a GPU):
#   DS_ACCELERATOR=cpu tools/dist_train.sh configs/demo/eva-mim_vit-tiny-p14_2xb16-8e_shapes_deepspeed-zero1.py 2
# tests/engine/test_distributed.py: its losses equal the 2-process DDP run's (1e-5, 20 iterations),
# and a killed run resumes with --resume on the same losses.
_base_ = ['./eva-mim_vit-tiny-p14_1xb32-8e_shapes.py', '../pretrain/_base_/deepspeed-zero1.py']

train_dataloader = dict(batch_size=16)  # x2 processes = the 1-process demo's batch of 32
strategy = dict(fp16=dict(enabled=False), inputs_to_half=None)
optim_wrapper = dict(
    _delete_=True,
    type='DeepSpeedOptimWrapper',
    optimizer={{_base_.optim_wrapper.optimizer}},
    paramwise_cfg={{_base_.optim_wrapper.paramwise_cfg}})
# not a tools/demo.py stage: the sharded engines were not run under torch's deterministic mode
randomness = dict(deterministic=False)
