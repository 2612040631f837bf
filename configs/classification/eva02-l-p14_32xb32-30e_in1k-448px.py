# EVA-02-L IN-1K fine-tune at 448 from the Merged-38M MIM model (eva02_reference.md 5): 30
# epochs (3 warmup), batch 1024 (32 GPUs x 32), lr 7e-5 (5e-5 from the IN-21K MIM model),
# layer decay 0.8, drop path 0.15, label smoothing 0.2, RRC (0.08, 1), EMA 0.9999.
# Released: 89.570 / 98.924 (m38m init; 89.626 / 98.954 from IN-21K MIM).
# Init: tools/model_converters/eva_to_mm.py eva02_L_pt_m38m_p14.pt checkpoints/eva02/eva02_L_pt_m38m_p14_mm.pth
_base_ = './_base_/eva02-p14_finetune.py'

model = dict(
    backbone=dict(arch='eva02-large', drop_path_rate=0.15, with_cp=True, init_cfg=dict(
        checkpoint='checkpoints/eva02/eva02_L_pt_m38m_p14_mm.pth')),
    head=dict(in_channels=1024, loss=dict(label_smooth_val=0.2)))
optim_wrapper = dict(optimizer=dict(lr=7e-5), paramwise_cfg=dict(layer_decay_rate=0.8))
