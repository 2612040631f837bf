# EVA-01 IN-1K fine-tune at 560 from the IN-21K model: the 336 recipe, 15 epochs.
# Paper result: 89.7 top-1 (89.712 / 98.958).
_base_ = './eva-g-p14_32xb16-10e_in1k-336px.py'

img_size = 560
train_pipeline = {{_base_.in1k_pipelines.eva01_560.train}}
test_pipeline = {{_base_.in1k_pipelines.eva01_560.test}}
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
model = dict(backbone=dict(img_size=img_size))
max_epochs, warmup_epochs = 15, 2
param_scheduler = {{_base_.schedules.e15_w2}}
train_cfg = dict(max_epochs=max_epochs)
