# EVA-02-L IN-1K fine-tune at 448 from its IN-21K intermediate model (eva02_reference.md 5):
# 20 epochs (2 warmup), batch 512 (16 GPUs x 32), lr 2e-5, layer decay 0.85, drop path 0.15,
# label smoothing 0.2, RRC (0.08, 1), EMA 0.9999. Released (EMA): 89.974 / 99.022 (m38m MIM ->
# IN-21K -> IN-1K), 89.904 / 98.974 (IN-21K MIM). Init: the released IN-21K intermediate model
# (for the IN-21K MIM row: eva02_L_pt_in21k_medft_in21k_p14.pt):
#   python tools/model_converters/eva_to_mm.py eva02_L_pt_m38m_medft_in21k_p14.pt \
#       checkpoints/eva02/eva02_L_pt_m38m_medft_in21k_p14_mm.pth
_base_ = './eva02-b-p14_in21k-pre_16xb32-15e_in1k-448px.py'

model = dict(
    backbone=dict(arch='eva02-large', drop_path_rate=0.15, with_cp=True, init_cfg=dict(
        checkpoint='checkpoints/eva02/eva02_L_pt_m38m_medft_in21k_p14_mm.pth')),
    head=dict(in_channels=1024))
optim_wrapper = dict(optimizer=dict(lr=2e-5), paramwise_cfg=dict(layer_decay_rate=0.85))
max_epochs, warmup_epochs = 20, 2
param_scheduler = {{_base_.schedules.e20_w2}}
train_cfg = dict(max_epochs=max_epochs)
