# Fine-tune EVA-01's ViT-Adapter + Mask2Former on your own semantic segmentation data
# (mmseg layout; docs/custom_data.md).
# Layout:  <data_root>/images/{training,validation}/<name>.jpg  and
#          <data_root>/annotations/{training,validation}/<name>.png  (one uint8 label per
#          pixel: 0..len(classes)-1, 255 = ignore)
# Init: the converted ADE20K model (its class layer does not fit other classes and starts
# from scratch; everything else loads):
#   tools/model_converters/eva_to_mm.py eva_sem_seg_mask2former_ade_ss61p5_ms62p3.pth checkpoints/eva/eva_sem_seg_mask2former_ade_ss61p5_ms62p3_mm.pth
# (the COCO-Stuff recipe: its pipelines take reduce_zero_label from the dataset, set below)
_base_ = '{{$EVA_CONFIGS:..}}/segmentation/eva-mask2former_vit-g-adapter-p16_32xb1-60k_coco-stuff164k-896x896.py'

# ---- your data
classes = ('background', 'class_a', 'class_b')
palette = [[0, 0, 0], [230, 25, 75], [60, 180, 75]]
data_root = 'data/my_segmentation'
img_suffix, seg_map_suffix = '.jpg', '.png'
load_from = 'checkpoints/eva/eva_sem_seg_mask2former_ade_ss61p5_ms62p3_mm.pth'
# ---- your schedule
max_iters, warmup_iters = 5000, 250
batch_size = 2  # per GPU

num_classes = len(classes)
model = dict(backbone=dict(vit=dict(init_cfg=None)),  # all weights come from load_from
             decode_head=dict(num_classes=num_classes,
                              loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])))
dataset = dict(type='BaseSegDataset', data_root=data_root,
               metainfo=dict(classes=classes, palette=palette), img_suffix=img_suffix,
               seg_map_suffix=seg_map_suffix, reduce_zero_label=False)
train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(_delete_=True, **dataset, pipeline={{_base_.train_pipeline}},
                 data_prefix=dict(img_path='images/training',
                                  seg_map_path='annotations/training')))
val_dataloader = dict(
    dataset=dict(_delete_=True, **dataset, pipeline={{_base_.eval_pipeline}},
                 data_prefix=dict(img_path='images/validation',
                                  seg_map_path='annotations/validation')))
test_dataloader = val_dataloader
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters + 1),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=max_iters + 1),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_best=None))
