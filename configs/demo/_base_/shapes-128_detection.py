# The detection demos' data: the generated shapes with masks of
# projects/eva/demo/synthetic_detection.py (tools/demo.py writes them), 128 px, a COCO json per
# split. One table, picked with ``{{_base_.shapes.<mask|box>.<key>}}``: ``mask`` for Cascade
# Mask R-CNN (configs/demo/eva-det_*), ``box`` for DINO (configs/demo/eva02-dino_*). Only a
# table: a base listed beside a recipe may not repeat the recipe's keys (train_dataloader...).


def _shapes(with_mask, data_root='data/demo/detection/', size=128):
    load = dict(type='LoadAnnotations', with_bbox=True, with_mask=with_mask)
    train_pipeline = [
        dict(type='LoadImageFromFile'),
        load,
        dict(type='RandomFlip', prob=0.5),
        dict(type='RandomResize', scale=(size, size), ratio_range=(0.8, 1.25), keep_ratio=True),
        dict(type='RandomCrop', crop_type='absolute_range', crop_size=(size, size),
             recompute_bbox=True, allow_negative_crop=True),
        dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
        dict(type='PackDetInputs'),
    ]
    test_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(size, size), keep_ratio=True),
        load,
        dict(type='PackDetInputs',
             meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
    ]
    metainfo = dict(classes=('circle', 'square', 'triangle'))
    # CheckedCocoDataset: mmdet's CocoDataset that reports bad annotations, as the real configs
    train_dataloader = dict(
        # per-iteration cost on CPU is mostly fixed overhead: big batches are cheap
        # tiny PNGs load in ~2 ms: no worker process to compete with training for the 2 cores
        batch_size=8, num_workers=0, persistent_workers=False,
        sampler=dict(type='InfiniteSampler', shuffle=True),
        dataset=dict(type='CheckedCocoDataset', data_root=data_root, metainfo=metainfo,
                     ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                     filter_cfg=dict(filter_empty_gt=True), pipeline=train_pipeline))
    val_dataloader = dict(
        batch_size=8, num_workers=0, persistent_workers=False, drop_last=False,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='CheckedCocoDataset', data_root=data_root, metainfo=metainfo,
                     ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'),
                     test_mode=True, pipeline=test_pipeline))
    val_evaluator = dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val.json',
                         metric=['bbox', 'segm'] if with_mask else 'bbox')
    return dict(data_root=data_root, metainfo=metainfo, train_pipeline=train_pipeline,
                test_pipeline=test_pipeline, train_dataloader=train_dataloader,
                val_dataloader=val_dataloader, val_evaluator=val_evaluator)


shapes = dict(mask=_shapes(with_mask=True), box=_shapes(with_mask=False))
