# Smaller budget: ViT-L/14 student, same teacher, data and recipe (batch 4096 = 64 x 64).
_base_ = './eva-mim_vit-g-p14_128xb32-150e_merged30m.py'
model = dict(backbone=dict(arch='large'), head=dict(in_channels=1024))
train_dataloader = dict(batch_size=64)
