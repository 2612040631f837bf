# Demo: fine-tune the EVA-02 MIM demo backbone on the digits, with the EVA-01 demo's digits
# recipe (configs/demo/eva-cls_vit-tiny-p14_1xb64-80e_digits.py: mean pooling + fc_norm,
# label smoothing, AdamW 4e-3, no layer decay, warmup + cosine) so that the two rows of the
# demo table differ by the backbone and its pretraining only. The digits are written at 40 px
# (5x5 patches of 8 px, the EVA-02 MIM grid). Half the EVA-01 stage's epochs: the time budget.
# The real EVA-02 fine-tuning recipes are configs/classification/eva02-*.
_base_ = './eva-cls_vit-tiny-p14_1xb64-80e_digits.py'

data_root = 'data/demo/digits40'  # written by tools/demo.py (the eva02 stage)
img_size, patch_size = 40, 8
train_pipeline = {{_base_.digits.px40.train}}
test_pipeline = {{_base_.digits.px40.test}}
train_dataloader = dict(dataset=dict(dataset=dict(data_root=data_root,
                                                  pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=96, num_layers=4, num_heads=3,
                  feedforward_channels=256, mlp_type='swiglu', sub_ln=True, rope=True),
        img_size=img_size, patch_size=patch_size, rope_ref_size=img_size // patch_size,
        # tools/demo.py points this at the EVA-02 MIM demo checkpoint
        init_cfg=None))

max_epochs = 40
param_scheduler = [_base_.param_scheduler[0],
                   dict(_base_.param_scheduler[1], end=max_epochs, T_max=max_epochs - 2)]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs))
