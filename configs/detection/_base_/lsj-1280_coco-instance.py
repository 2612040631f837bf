# COCO 2017 instances with large-scale jitter (EVA-01 coco_loader_lsj_1280): flip, resize by a
# random factor in [0.1, 2.0] of image_size (keep ratio), crop image_size x image_size; the
# data preprocessor pads to a square. Test: longer side image_size.
dataset_type = 'CheckedCocoDataset'  # CocoDataset that reports bad annotations
# COCO train2017 holds 2 zero-height boxes (ann ids 918, 2206849) that mmdet and EVA-01 drop:
# drop them too, counted and logged (the dataset's default stops on any bad annotation)
on_bad_annotation = 'skip'
data_root = 'data/coco/'
image_size = 1280
backend_args = None


def _lsj(size, with_mask=True):
    """(train, test) pipelines at ``size`` with (COCO, LVIS) or without (Objects365) masks,
    and the detector's data-preprocessor change (``pad``) that squares its batches to ``size``."""
    load = dict(type='LoadAnnotations', with_bbox=True, with_mask=with_mask)
    train = [
        dict(type='LoadImageFromFile', backend_args=backend_args),
        load,
        dict(type='RandomFlip', prob=0.5),
        dict(type='RandomResize', scale=(size, size), ratio_range=(0.1, 2.0), keep_ratio=True),
        dict(type='RandomCrop', crop_type='absolute_range', crop_size=(size, size),
             recompute_bbox=True, allow_negative_crop=True),
        dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
        dict(type='PackDetInputs'),
    ]
    test = [
        dict(type='LoadImageFromFile', backend_args=backend_args),
        dict(type='Resize', scale=(size, size), keep_ratio=True),
        load,
        dict(type='PackDetInputs',
             meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
    ]
    if with_mask:
        pad = dict(batch_augments=[dict(type='BatchFixedSizePad', size=(size, size),
                                        pad_mask=True)],
                   test_pad_size=(size, size))
    else:
        pad = dict(pad_mask=False, test_pad_size=(size, size),
                   batch_augments=[dict(type='BatchFixedSizePad', size=(size, size))])
    return dict(train=train, test=test, pad=pad)


train_pipeline = _lsj(image_size)['train']
test_pipeline = _lsj(image_size)['test']
# the other sizes the configs use, defined here once: ``{{_base_.lsj.<name>.train|test|pad}}``
# (EVA-L/B and Objects365 train at 1024; EVA-01 evaluates the 1280 models at 1536; DINO-EVA
# trains boxes only at 1024 / 1280 / 1536)
lsj = dict(mask1024=_lsj(1024), mask1536=_lsj(1536), box1024=_lsj(1024, with_mask=False),
           box1280=_lsj(1280, with_mask=False), box1536=_lsj(1536, with_mask=False))

train_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root,
                 ann_file='annotations/instances_train2017.json',
                 data_prefix=dict(img='train2017/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=32),
                 on_bad_annotation=on_bad_annotation,
                 pipeline=train_pipeline, backend_args=backend_args))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root,
                 ann_file='annotations/instances_val2017.json',
                 data_prefix=dict(img='val2017/'), test_mode=True,
                 on_bad_annotation=on_bad_annotation,
                 pipeline=test_pipeline, backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val2017.json',
                     metric=['bbox', 'segm'], format_only=False, backend_args=backend_args)
test_evaluator = val_evaluator

# flip x 3 scales TTA with box and mask merging: tools/test.py --tta
tta_model = dict(type='EVADetTTAModel',
                 tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale=(s, s), keep_ratio=True) for s in (1024, 1280, 1536)],
        [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
        [dict(type='LoadAnnotations', with_bbox=True, with_mask=True)],
        [dict(type='PackDetInputs',
              meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                         'flip', 'flip_direction'))]]),
]
