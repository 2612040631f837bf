# The classification demo (layer-decay fine-tune) on DeepSpeed ZeRO-1, fp32, through the
# pretraining recipe's engine section (configs/pretrain/_base_/deepspeed-zero1.py):
#   DS_ACCELERATOR=cpu tools/dist_train.sh configs/demo/eva-cls_vit-tiny-p14_2xb32-80e_digits_deepspeed-zero1.py 2
# EVALayerDecayOptimWrapperConstructor builds the parameter groups before DeepSpeed wraps
# the optimizer; tests/engine/test_distributed.py checks each group's lr after the strategy.
_base_ = ['./eva-cls_vit-tiny-p14_1xb64-80e_digits.py', '../pretrain/_base_/deepspeed-zero1.py']

train_dataloader = dict(batch_size=32)  # x2 processes = the 1-process demo's batch of 64
strategy = dict(fp16=dict(enabled=False), inputs_to_half=None)
optim_wrapper = dict(
    _delete_=True,
    type='DeepSpeedOptimWrapper',
    optimizer={{_base_.optim_wrapper.optimizer}},
    constructor={{_base_.optim_wrapper.constructor}},
    paramwise_cfg={{_base_.optim_wrapper.paramwise_cfg}})
# not a tools/demo.py stage: the sharded engines were not run under torch's deterministic mode
randomness = dict(deterministic=False)
