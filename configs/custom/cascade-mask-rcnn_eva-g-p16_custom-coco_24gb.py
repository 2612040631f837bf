# Memory-saving preset for one 24 GB card (docs/custom_data.md#fitting-a-24-gb-card): the
# custom COCO-format config with every lever that trades speed or accuracy for memory.
# Not measured here (this project's machines have no GPU); each lever is standard:
#   * activation checkpointing in every block (already on in the recipe: with_cp=True)
#   * the patch embedding and the first 20 of the 40 blocks frozen (no gradients, no AdamW
#     state for half the backbone)
#   * bf16 autocast (no loss scaling needed; needs an Ampere-or-newer GPU)
#   * 1024 px instead of 1280 (0.64x the tokens; rel-pos tables are resized on load)
_base_ = '{{$EVA_CONFIGS:..}}/custom/cascade-mask-rcnn_eva-g-p16_custom-coco.py'

image_size = 1024
frozen_blocks = 20
model = dict(
    data_preprocessor=_base_.lsj.mask1024.pad,
    backbone=dict(img_size=image_size, with_cp=True, frozen_stages=frozen_blocks))
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16')
train_pipeline = {{_base_.lsj.mask1024.train}}  # the recipe's LSJ at image_size
test_pipeline = {{_base_.lsj.mask1024.test}}
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
