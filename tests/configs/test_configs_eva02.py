"""EVA-02 classification recipes carry the official numbers (eva02_reference.md 5)."""
import os.path as osp

import pytest
from parsed_configs import parsed_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS = 'classification/'


def _cfg(name):
    return parsed_config(name)


# name, arch, res, total batch, epochs, warmup, lr, lrd, dpr, smoothing, rrc min, EMA, classes
RECIPES = [
    ('eva02-ti-p14_8xb128-100e_in1k-336px.py', 'eva02-tiny', 336, 1024, 100, 5, 2e-4, 0.9, 0.1,
     0.1, 0.08, True, 1000),
    ('eva02-s-p14_8xb128-100e_in1k-336px.py', 'eva02-small', 336, 1024, 100, 5, 1e-4, 0.8, 0.1,
     0.1, 0.08, True, 1000),
    ('eva02-b-p14_16xb64-30e_in1k-448px.py', 'eva02-base', 448, 1024, 30, 3, 1e-4, 0.7, 0.1,
     0.1, 0.08, True, 1000),
    ('eva02-l-p14_32xb32-30e_in1k-448px.py', 'eva02-large', 448, 1024, 30, 3, 7e-5, 0.8, 0.15,
     0.2, 0.08, True, 1000),
    ('eva02-b-p14_32xb64-40e_in21k-448px.py', 'eva02-base', 448, 2048, 40, 1, 3e-4, 0.7, 0.1,
     0.1, 0.2, False, 21841),
    ('eva02-l-p14_64xb32-30e_in21k-448px.py', 'eva02-large', 448, 2048, 30, 1, 3e-4, 0.75, 0.15,
     0.1, 0.2, False, 21841),
    ('eva02-b-p14_in21k-pre_16xb32-15e_in1k-448px.py', 'eva02-base', 448, 512, 15, 2, 5e-5, 0.8,
     0.15, 0.2, 0.08, True, 1000),
    ('eva02-l-p14_in21k-pre_16xb32-20e_in1k-448px.py', 'eva02-large', 448, 512, 20, 2, 2e-5,
     0.85, 0.15, 0.2, 0.08, True, 1000),
]


@pytest.mark.parametrize('name,arch,res,batch,epochs,warmup,lr,lrd,dpr,smooth,rrc,ema,classes',
                         RECIPES)
def test_eva02_classification_recipes(name, arch, res, batch, epochs, warmup, lr, lrd, dpr,
                                      smooth, rrc, ema, classes):
    """Common: AdamW (0.9, 0.999) eps 1e-8 wd 0.05, no clip, frozen patch embedding, mean
    pooling + fc_norm, head x0.001, warmup from 0 then cosine to 0, CLIP mean/std, RandAugment
    m9 mstd 0.5, no mixup / cutmix / random erasing, short-side resize + center crop eval."""
    cfg = _cfg(CLS + name)
    bb, head, opt = cfg.model.backbone, cfg.model.head, cfg.optim_wrapper
    assert (bb.arch, bb.img_size, bb.patch_size, bb.drop_path_rate) == (arch, res, 14, dpr)
    assert bb.freeze_patch_embed and bb.out_type == 'avg_featmap' and not bb.final_norm
    assert head.num_classes == classes == cfg.data_preprocessor.num_classes
    assert head.init_scale == 0.001 and head.loss.label_smooth_val == smooth
    assert head.in_channels == {'eva02-tiny': 192, 'eva02-small': 384, 'eva02-base': 768,
                                'eva02-large': 1024}[arch]
    assert (opt.optimizer.lr, opt.optimizer.betas, opt.optimizer.eps,
            opt.optimizer.weight_decay) == (lr, (0.9, 0.999), 1e-8, 0.05)
    assert opt.get('clip_grad') is None and opt.paramwise_cfg.layer_decay_rate == lrd
    assert opt.paramwise_cfg.no_decay_1d and opt.type == 'AmpOptimWrapper'
    per_gpu = cfg.train_dataloader.batch_size
    gpus, per = name.split('xb')[0].split('_')[-1], name.split('xb')[1].split('-')[0]
    assert int(per) == per_gpu and int(gpus) * per_gpu == batch
    assert cfg.auto_scale_lr.base_batch_size == batch
    warm, cosine = cfg.param_scheduler
    assert (warm.start_factor < 1e-8, warm.end, cosine.begin, cosine.end, cosine.eta_min) == \
        (True, warmup, warmup, epochs, 0.)
    assert cfg.train_cfg.max_epochs == epochs
    pipe = cfg.train_dataloader.dataset.pipeline
    assert [t.type for t in pipe] == ['LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip',
                                      'RandAugment', 'PackInputs']
    assert pipe[1].scale == res and pipe[1].crop_ratio_range == (rrc, 1.0)
    assert (pipe[3].magnitude_level, pipe[3].magnitude_std) == (9, 0.5)
    assert cfg.model.get('train_cfg') is None  # no mixup / cutmix
    assert cfg.data_preprocessor.mean == [0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255]
    hooks = [h.type for h in cfg.custom_hooks]
    assert ('EMAHook' in hooks) == ema
    if ema:
        assert [h.momentum for h in cfg.custom_hooks if h.type == 'EMAHook'] == [1e-4]
    if classes == 1000:
        test = cfg.val_dataloader.dataset.pipeline
        assert (test[1].type, test[1].scale, test[2].crop_size) == ('ResizeEdge', res, res)
    else:
        assert cfg.val_dataloader is None and cfg.train_dataloader.dataset.type == 'ImageNet21k'


ROBUST = {'val': 'data/imagenet', 'v2': 'data/imagenetv2/imagenetv2-matched-frequency-format-val',
          'real': 'data/imagenet', 'a': 'data/imagenet-a', 'r': 'data/imagenet-r',
          'sketch': 'data/imagenet-sketch/sketch', 'objectnet': 'data/objectnet-1.0'}


@pytest.mark.parametrize('variant', list(ROBUST))
def test_eva02_l_robustness_evaluations(variant):
    """The released robustness table is for EVA-02-L m38m -> IN-21K -> IN-1K at 448."""
    cfg = _cfg(f'classification/robustness/eva02-l-p14_448px_in1k-{variant}.py')
    bb = cfg.model.backbone
    assert (bb.arch, bb.img_size, bb.init_cfg) == ('eva02-large', 448, None)
    data = cfg.test_dataloader.dataset
    assert (data.type, data.variant, data.data_root) == ('ImageNetVariant', variant,
                                                          ROBUST[variant])
    resize, crop = data.pipeline[1:3]
    assert (resize.type, resize.scale, crop.crop_size) == ('ResizeEdge', 448, 448)
    assert cfg.test_evaluator.type == 'RobustAccuracy'
    assert cfg.test_evaluator.prefix == f'in1k-{variant}'
