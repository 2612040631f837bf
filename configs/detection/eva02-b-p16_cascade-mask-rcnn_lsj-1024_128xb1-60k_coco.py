# EVA-02-B COCO "head-to-head" baseline (EVA-02/det eva2_mim_to_coco/
# eva2_coco_cascade_mask_rcnn_vitdet_b_4attn_1024_lrd0p7.py; released `eva02_B_coco_bsl.pth`:
# box AP 55.5 / mask AP 47.1 on val2017). The EVA-01 ViTDet Cascade Mask R-CNN (same simple
# feature pyramid with LN, 4conv1fc LN box heads, IoU 0.5/0.6/0.7, class-agnostic boxes, LSJ)
# with the EVA-02 backbone: EVAViT `eva02-base` at patch 16 (`eva02_B_pt_in21k_p14to16`), no
# cls token, no final norm, no rel-pos (the official det ViT uses RoPE instead: its
# `use_rel_pos=True` is never read), RoPE per 16x16 window (`rope_win`) and over the whole
# 64x64 map in the 4 global blocks 2/5/8/11 (`rope_glb`), both scaled to the 16x16
# pretraining grid; the patch embedding trains (EVA-01 froze it). Every EVA-02 det config
# derives from this one, as the official configs derive from cascade_mask_rcnn_vitdet_b_100ep.
_base_ = ['./_base_/eva-g_cascade-mask-rcnn_lsj-1280.py', './_base_/lsj-1280_coco-instance.py']

train_size = 1024
image_size = 1024
model = dict(
    data_preprocessor=_base_.lsj.mask1024.pad,  # square_pad = img_size
    backbone=dict(
        arch='eva02-base', img_size=train_size, window_size=16,
        global_block_indices=(2, 5, 8, 11), use_rel_pos=False, drop_path_rate=0.1,
        with_cp=False, freeze_patch_embed=False,
        init_cfg=dict(checkpoint='checkpoints/eva02/eva02_B_pt_in21k_p14to16_mm.pth')),
    neck=dict(in_channels=768))

# AdamW (0.9, 0.999), wd 0.1 on EVERY parameter (`weight_decay_norm=None, overrides={}`: norms,
# biases and pos_embed too), layer decay 0.7 (embeddings 0.7^13, block k 0.7^(12-k), neck and
# heads 1; detectron2 get_vit_lr_decay_rate), AMP.
optim_wrapper = dict(optimizer=dict(lr=5e-5), paramwise_cfg=dict(layer_decay_rate=0.7))


def _steps(iters, warmup=1000):
    """EVA-02's step schedule: linear warmup (factor 0.001), x0.1 at 80 %, x0.01 at 90 %."""
    return [dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=warmup),
            dict(type='MultiStepLR', by_epoch=False, begin=0, end=iters, gamma=0.1,
                 milestones=[iters * 8 // 10, iters * 9 // 10])]


def _constant(warmup):
    """O365 -> COCO / LVIS: warmup over 1 % of the run (factor 0.001), then constant
    (detectron2's CosineParamScheduler(1, 1))."""
    return [dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=warmup)]


# the schedules the EVA-02 det configs use, written once: ``{{_base_.schedules.<name>}}``
schedules = dict(steps40k=_steps(40000), steps50k=_steps(50000), steps60k=_steps(60000),
                 steps400k=_steps(400000, warmup=5000), const40k=_constant(400),
                 const70k=_constant(700))
max_iters = 60000
train_cfg = dict(max_iters=max_iters)
param_scheduler = schedules['steps60k']
auto_scale_lr = dict(base_batch_size=128)  # 128 images per iteration (e.g. 128 GPUs x 1)

# system-level evaluation (README eval commands of the `_sys` models): class-wise linear
# soft-NMS (IoU 0.6, sigma 0.5, min score 1e-3: mmcv soft_nms as in fast_rcnn.py) with no top-k;
# COCO also overrides the score threshold to 0 (`override_score_thresh=0.0`)
soft_nms = dict(type='soft_nms', iou_threshold=0.6, method='linear', sigma=0.5, min_score=1e-3)
train_pipeline = {{_base_.lsj.mask1024.train}}
test_pipeline = {{_base_.lsj.mask1024.test}}
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
