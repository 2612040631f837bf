# What the segmentation recipes share whatever their model (UperNet, Mask2Former, the demo):
# the crop-size pipelines and the warmup + poly schedules, written once. Listed beside a
# recipe's other bases (it defines only these two tables); a recipe picks its entries with
# ``{{_base_.seg_pipelines.<name>.train|test}}`` and ``{{_base_.schedules.<name>}}``.


def _pipelines(size, labels, to_multiple=False):
    """(train, test) at crop ``size``: Resize (4 size, size) x [0.5, 2], RandomCrop (cat_max
    0.75), flip, PhotoMetricDistortion; test (4 size, size) keep-ratio (then a multiple of 32
    for the Mask2Former models' sliding window, which also get ``tta``). ``labels``: CheckedLoadAnnotations' options
    (ADE20K drops label 0)."""
    load = dict(type='CheckedLoadAnnotations', **labels)
    train = [
        dict(type='LoadImageFromFile'),
        load,
        dict(type='RandomResize', scale=(4 * size, size), ratio_range=(0.5, 2.0),
             keep_ratio=True),
        dict(type='RandomCrop', crop_size=(size, size), cat_max_ratio=0.75),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PhotoMetricDistortion'),
        dict(type='PackSegInputs'),
    ]
    test = [dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(4 * size, size), keep_ratio=True)]
    if to_multiple:
        test.append(dict(type='ResizeToMultiple', size_divisor=32))
    test += [load, dict(type='PackSegInputs')]
    if not to_multiple:
        return dict(train=train, test=test)
    # --tta: EVA-01's multi-scale + flip test (short sides 512..1280)
    ratios = [s / size for s in (512, 640, 768, size, 1024, 1152, 1280)]
    tta = [
        dict(type='LoadImageFromFile'),
        dict(type='TestTimeAug', transforms=[
            [dict(type='Resize', scale=(int(4 * size * r), int(size * r)), keep_ratio=True)
             for r in ratios],
            [dict(type='ResizeToMultiple', size_divisor=32)],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [load],
            [dict(type='PackSegInputs')]]),
    ]
    return dict(train=train, test=test, tta=tta)


ade = dict(reduce_zero_label=True)
seg_pipelines = dict(
    ade512=_pipelines(512, ade), ade640=_pipelines(640, ade),  # UperNet
    ade896=_pipelines(896, ade, to_multiple=True),  # Mask2Former
    cocostuff896=_pipelines(896, dict(), to_multiple=True),
    shapes128=_pipelines(128, dict(reduce_zero_label=False)))  # the demo's generated shapes
del ade


def _warmup_poly(iters, warmup=1500):
    """Linear warmup (ratio 1e-6) times poly (power 1) to 0, per iteration: mmcv's
    poly-with-warmup, the product of both schedules from iteration 0 (they chain; mmengine's
    schedulers reach their end value at ``end - 1``, hence the + 1)."""
    return [dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup + 1),
            dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=iters + 1)]


schedules = dict(poly20k_w500=_warmup_poly(20000, warmup=500), poly40k=_warmup_poly(40000),
                 poly60k=_warmup_poly(60000), poly80k=_warmup_poly(80000),
                 poly160_w20=_warmup_poly(160, warmup=20))  # the demo
