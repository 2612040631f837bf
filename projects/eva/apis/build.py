"""The one front door: a config (or a model-index name) -> a model, with checked weights.

Every tool that needs a model calls :func:`build_model`: ``get_model``, inference and the web
demo, ONNX export, feature maps, memory and FLOPs. It reads the config (:func:`load_config`),
names its task (:func:`task_of`), strips the config's own weight files when the weights come
from elsewhere (:func:`strip_pretrained`), merges the top-level data preprocessor as the Runner
does, builds in the config's registry scope, reads the checkpoint through the one loader
(:func:`projects.eva.loader.read_checkpoint`: never code, bad files named, NaN named), checks
that it fills the model (:func:`projects.eva.loader.check_fit`, the structural rule the
training hooks and ``init_cfg`` use too) and fills ``dataset_meta`` from the checkpoint, then the config.

The backbone protocol (:func:`vit_of`, :func:`size_divisor`): a model's ``backbone`` is an
``EVAViT`` or wraps one as ``backbone.vit``; a wrapper that needs inputs coarser than the
patch grid says so with a ``size_divisor`` attribute (the ViT-Adapter: 32). No class names.
"""
import copy
import os.path as osp
from typing import Optional, Sequence, Union

import torch
from mmengine.config import Config, ConfigDict

from ..loader import (CheckpointFitError, check_classes, check_fit,  # noqa: F401  (the door's)
                      checkpoint_dataset_meta, vits_in)

TASKS = ('mim', 'classification', 'zero-shot', 'detection', 'segmentation', 'video')
# keys whose string value names a weight file a module reads while it is built or initialised
WEIGHT_FILE_KEYS = ('checkpoint', 'pretrained')


# ---------------------------------------------------------------------- config
def load_config(config: Union[str, Config], cfg_options: Optional[dict] = None) -> Config:
    """A config file (its ``custom_imports`` are imported) or a copy of a Config, with the
    dotted ``cfg_options`` merged."""
    if isinstance(config, (Config, ConfigDict)):
        cfg = copy.deepcopy(config)
        if not isinstance(cfg, Config):
            cfg = Config(dict(cfg))
    elif isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config file not found: {config}')
        cfg = Config.fromfile(config)
    else:
        raise TypeError(f'config must be a path or a Config, got {type(config).__name__}')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def task_of(cfg: Config) -> str:
    """One of :data:`TASKS`: EVA-CLIP is zero-shot classification, a model with a teacher is
    MIM pretraining; otherwise the OpenMMLab package of the config's ``default_scope``."""
    model = cfg.model
    model_type = str(model.get('type', '')).split('.')[-1]
    if model_type == 'EVACLIP':
        return 'zero-shot'
    if model_type == 'EVAMIM' or model.get('teacher') is not None:
        return 'mim'
    scope = cfg.get('default_scope')
    task = {'mmdet': 'detection', 'mmseg': 'segmentation', 'mmaction': 'video'}.get(scope)
    if task:
        return task
    if scope == 'mmpretrain' and model.get('head') is not None:
        return 'classification'
    raise ValueError(f'unknown task for this config (default_scope={scope!r}, '
                     f'model.type={model_type!r}): expected a classification, EVA-CLIP, MIM, '
                     'detection, segmentation or video config')


def strip_pretrained(node) -> None:
    """In place: no weight file named by the config is read while the model is built or
    initialised -- ``init_cfg=Pretrained`` (a dict, or an entry of a list) and the
    ``checkpoint=`` / ``pretrained=`` files of teachers and text towers. Used when the
    weights come from a checkpoint, or when there are none (meta device)."""
    if isinstance(node, dict):
        for key in list(node):
            value = node[key]
            if key == 'init_cfg':
                if isinstance(value, dict) and value.get('type') == 'Pretrained':
                    node[key] = None
                elif isinstance(value, (list, tuple)):
                    kept = [v for v in value
                            if not (isinstance(v, dict) and v.get('type') == 'Pretrained')]
                    node[key] = kept or None
            elif key in WEIGHT_FILE_KEYS and isinstance(value, str):
                node[key] = None
            else:
                strip_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for v in node:
            strip_pretrained(v)


def model_config(cfg: Config) -> ConfigDict:
    """``cfg.model`` with the top-level ``data_preprocessor`` merged in, as the Runner does."""
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        pre = copy.deepcopy(cfg.data_preprocessor)
        pre.update(model_cfg.get('data_preprocessor') or {})
        model_cfg['data_preprocessor'] = pre
    return model_cfg


def config_dataset_meta(cfg: Config) -> dict:
    """The test dataset's metainfo (``classes``, ``palette``) as the dataset would report
    it, without reading any annotation."""
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    if not loader or not loader.get('dataset'):
        return {}
    ds_cfg = copy.deepcopy(loader.dataset)
    while 'dataset' in ds_cfg and 'metainfo' not in ds_cfg:  # wrappers (RepeatDataset, ...)
        ds_cfg = ds_cfg.dataset
    meta = dict(ds_cfg.get('metainfo') or {})
    if 'classes' in meta:
        return meta
    from mmengine.registry import DATASETS, DefaultScope
    try:
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
            cls = DATASETS.get(ds_cfg.type)
    except Exception:  # noqa: BLE001 - a dataset type of a package not imported
        return {}
    return dict(getattr(cls, 'METAINFO', {}) or {}) if cls is not None else {}


# ---------------------------------------------------------------------- backbone protocol
def vit_of(model: torch.nn.Module):
    """The ``EVAViT`` inside any model: its ``backbone``, or what the backbone wraps
    (``backbone.vit``)."""
    from ..models.eva_vit import EVAViT
    backbone = getattr(model, 'backbone', model)
    vit = getattr(backbone, 'vit', backbone)
    if not isinstance(vit, EVAViT):
        raise TypeError(f'{type(model).__name__} has no EVAViT backbone (backbone: '
                        f'{type(backbone).__name__})')
    return vit


def size_divisor(model: torch.nn.Module) -> int:
    """Input sides must be multiples of this: the backbone's ``size_divisor`` if it declares
    one (the ViT-Adapter: 32), else the ViT's patch size."""
    backbone = getattr(model, 'backbone', model)
    return int(getattr(backbone, 'size_divisor', None) or vit_of(model).patch_size)


# ---------------------------------------------------------------------- the door
def resolve(config_or_name: Union[str, Config]):
    """(config, model-index entry or None) for a config path, a Config or a model name."""
    if isinstance(config_or_name, str) and not osp.isfile(config_or_name) \
            and not config_or_name.endswith('.py'):
        from .model_index import get_model_info
        info = get_model_info(config_or_name)
        return info.config, info
    return config_or_name, None


def build_model(config_or_name: Union[str, Config], checkpoint: Optional[str] = None,
                device: Optional[str] = None, weights: str = 'checkpoint',
                cfg_options: Optional[dict] = None, classes: Optional[Sequence[str]] = None,
                **model_kwargs):
    """A model in eval mode from a config path, a Config or a model-index name.

    Args:
        checkpoint: weights for the whole model (a run's checkpoint or a converted release),
            read by the one loader and checked by :func:`check_fit` (head required) and,
            when it names its classes, against the config's dataset.
        device: ``'cpu'`` (default), ``'cuda'``..., or ``'meta'`` (no memory: shapes and
            parameter counts; no weights are read).
        weights: ``'checkpoint'``: the config's own weight files (``init_cfg=Pretrained``,
            teacher / text-tower files) are not read, the weights are ``checkpoint``'s, or
            the model's initialisation without one; ``'config'``: initialise as training
            does, reading those files (through the loader and the backbone-init fit rule),
            then ``checkpoint`` if given.
        classes: class names to use (they override the checkpoint's and are not compared).
        cfg_options: dotted overrides of the config; ``**model_kwargs`` override ``model.*``.
    Returns:
        the model, with ``.cfg`` (its config), ``.dataset_meta``, ``.eva_task``.
    """
    from mmengine.registry import MODELS, DefaultScope

    from ..loader import read_checkpoint, unwrap_state_dict
    if weights not in ('checkpoint', 'config'):
        raise ValueError(f"weights must be 'checkpoint' or 'config', got {weights!r}")
    config, info = resolve(config_or_name)
    cfg = load_config(config, cfg_options)
    if model_kwargs:
        cfg.merge_from_dict({'model': model_kwargs})
    task = task_of(cfg)
    model_cfg = model_config(cfg)
    meta_device = device == 'meta'
    if meta_device and checkpoint:
        raise ValueError('a checkpoint cannot be loaded on the meta device')
    # the file first: a bad or unsafe one is named before minutes of building a giant model
    raw = read_checkpoint(checkpoint) if checkpoint else None
    if weights == 'checkpoint' or meta_device:
        strip_pretrained(model_cfg)
    if meta_device:  # training-only mixup/cutmix draw a Beta distribution at init
        (model_cfg.get('data_preprocessor') or {}).pop('blending', None)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
        if meta_device:
            try:
                with torch.device('meta'):
                    model = MODELS.build(model_cfg)
                # tensors made with the legacy ``torch.Tensor(n, c)`` ignore the device
                # context (mmdet DINO's ``level_embed``): move them too
                model.to('meta')
            except (RuntimeError, NotImplementedError) as e:  # a constructor read values
                if 'meta' not in str(e):
                    raise
                model = MODELS.build(model_cfg).to('meta')
        else:
            model = MODELS.build(model_cfg)
            if weights == 'config' or not checkpoint:
                model.init_weights()
    dataset_meta = {}
    if checkpoint:
        sd = unwrap_state_dict(raw, checkpoint)
        check_fit(model, sd, checkpoint, head='required')
        dataset_meta = checkpoint_dataset_meta(raw)
        cfg_meta = config_dataset_meta(cfg)
        if classes is None:
            where = config if isinstance(config, str) else 'the config'
            check_classes(dataset_meta.get('classes'), cfg_meta.get('classes'), checkpoint,
                          f'the test dataset of {where}')
        model.load_state_dict(sd, strict=False)
        del raw, sd
    if classes is not None:
        dataset_meta['classes'] = list(classes)
    elif not dataset_meta.get('classes'):
        cfg_meta = config_dataset_meta(cfg)
        if cfg_meta.get('classes'):
            dataset_meta['classes'] = list(cfg_meta['classes'])
            if cfg_meta.get('palette') is not None:
                dataset_meta['palette'] = cfg_meta['palette']
    if device not in (None, 'meta'):
        model.to(device)
    model.cfg = cfg
    model._config = cfg  # what mmpretrain's inferencers read
    model.dataset_meta = dataset_meta
    model.eva_task = task
    if info is not None:
        model.eva_model_info = info
    return model.eval()
