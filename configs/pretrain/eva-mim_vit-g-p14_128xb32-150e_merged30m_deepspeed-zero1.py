# EVA-01 ViT-g/14 MIM on DeepSpeed ZeRO-1, as the paper trained it (the engine section is
# configs/pretrain/_base_/deepspeed-zero1.py; everything else is the base recipe).
#   tools/dist_train.sh configs/pretrain/eva-mim_vit-g-p14_128xb32-150e_merged30m_deepspeed-zero1.py 8
# Other ZeRO stages / activation checkpointing from the command line:
#   --cfg-options strategy.zero_optimization.stage=2 model.backbone.with_cp=True
# Multi-node, Slurm, the deepspeed launcher and memory per GPU: docs/distributed.md.
_base_ = ['./eva-mim_vit-g-p14_128xb32-150e_merged30m.py', './_base_/deepspeed-zero1.py']

optim_wrapper = dict(
    _delete_=True,
    type='DeepSpeedOptimWrapper',
    optimizer={{_base_.optim_wrapper.optimizer}},
    paramwise_cfg={{_base_.optim_wrapper.paramwise_cfg}})
