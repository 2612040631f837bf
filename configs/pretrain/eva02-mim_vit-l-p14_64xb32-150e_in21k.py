# EVA-02-L MIM pretraining on IN-21K (eva02_reference.md 4): as B (150 epochs, batch 2048,
# lr 1.5e-3, EVA-CLIP teacher, 1024-d target) with drop path 0.1 and 64 GPUs x 32 (ZeRO-1 in
# the release: add a DeepSpeed strategy, docs/distributed.md). Merged-38M: 56 epochs, same
# hyper-parameters.
_base_ = './eva02-mim_vit-b-p14_32xb64-150e_in21k.py'

train_dataloader = dict(batch_size=32)
model = dict(
    backbone=dict(arch='eva02-large', drop_path_rate=0.1),
    head=dict(in_channels=1024))
