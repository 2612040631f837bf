# Smaller budget: ViT-B/14 student, same teacher, data and recipe (batch 4096 = 32 x 128).
_base_ = './eva-mim_vit-g-p14_128xb32-150e_merged30m.py'
model = dict(backbone=dict(arch='base'), head=dict(in_channels=768))
train_dataloader = dict(batch_size=128)
