# EVA-02-L IN-21K intermediate fine-tune at 448 from the Merged-38M MIM model
# (eva02_reference.md 5): 30 epochs (1 warmup), batch 2048 (64 GPUs x 32), lr 3e-4, layer
# decay 0.75, drop path 0.15, label smoothing 0.1, RRC (0.2, 1), no EMA, no evaluation (from the
# IN-21K MIM model: 20 epochs, batch 1024, lr 2e-4).
# Init: tools/model_converters/eva_to_mm.py eva02_L_pt_m38m_p14.pt checkpoints/eva02/eva02_L_pt_m38m_p14_mm.pth
_base_ = './eva02-b-p14_32xb64-40e_in21k-448px.py'

train_dataloader = dict(batch_size=32)
model = dict(
    backbone=dict(arch='eva02-large', drop_path_rate=0.15, with_cp=True, init_cfg=dict(
        checkpoint='checkpoints/eva02/eva02_L_pt_m38m_p14_mm.pth')),
    head=dict(in_channels=1024, loss=dict(label_smooth_val=0.1)))
optim_wrapper = dict(optimizer=dict(lr=3e-4), paramwise_cfg=dict(layer_decay_rate=0.75))
max_epochs, warmup_epochs = 30, 1
param_scheduler = {{_base_.schedules.e30_w1}}
train_cfg = dict(max_epochs=max_epochs)
