# Fine-tune EVA-02-B's UperNet on your own semantic segmentation data (ADE20K's mmseg layout;
# docs/custom_data.md).
# Layout:  <data_root>/images/{training,validation}/<name>.jpg  and
#          <data_root>/annotations/{training,validation}/<name>.png  (one uint8 value per
#          pixel, ADE20K's convention: 0 = unlabelled (ignored), k = classes[k - 1])
# Init: the converted EVA-02-B MIM backbone (patch 16); neck and heads start fresh:
#   python tools/model_converters/eva_to_mm.py eva02_B_pt_in21k_p14to16.pt checkpoints/eva02/eva02_B_pt_in21k_p14to16_mm.pth
# Everything else (512 crops, layer decay 0.85, slide test, bf16 here) is EVA-02-B's ADE20K
# recipe. One 24 GB GPU: batch 8 at 512 px, activation checkpointing, bf16: 2.75 GiB of
# weights, grads, AdamW moments and backbone + neck activations (estimated on the meta
# device, not a GPU run; the UperNet head's activations are not counted):
#   python tools/analysis_tools/estimate_memory.py configs/custom/eva02-b-p16_upernet_custom-seg.py
_base_ = '{{$EVA_CONFIGS:..}}/segmentation/eva02-b-p16_upernet_4xb8-60k_ade20k-512x512.py'

# ---- your data
classes = ('class_a', 'class_b')  # label value 1, 2 (0 = unlabelled)
palette = [[230, 25, 75], [60, 180, 75]]  # colours for tools/inference.py pictures
data_root = 'data/my_segmentation'
img_suffix, seg_map_suffix = '.jpg', '.png'
checkpoint = 'checkpoints/eva02/eva02_B_pt_in21k_p14to16_mm.pth'
# ---- your schedule
max_iters, warmup_iters = 5000, 250
batch_size = 8  # per GPU

num_classes = len(classes)
model = dict(backbone=dict(with_cp=True, init_cfg=dict(checkpoint=checkpoint)),
             decode_head=dict(num_classes=num_classes),
             auxiliary_head=dict(num_classes=num_classes))
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16')
dataset = dict(type='BaseSegDataset', data_root=data_root,
               metainfo=dict(classes=classes, palette=palette), img_suffix=img_suffix,
               seg_map_suffix=seg_map_suffix, reduce_zero_label=True)
train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(_delete_=True, **dataset, pipeline={{_base_.train_pipeline}},
                 data_prefix=dict(img_path='images/training',
                                  seg_map_path='annotations/training')))
val_dataloader = dict(
    dataset=dict(_delete_=True, **dataset, pipeline={{_base_.test_pipeline}},
                 data_prefix=dict(img_path='images/validation',
                                  seg_map_path='annotations/validation')))
test_dataloader = val_dataloader
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=warmup_iters,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_best=None))
