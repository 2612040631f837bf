"""Per-GPU training memory of an EVA pretraining config, computed on the ``meta`` device.

Model states follow the usual accounting (Rajbhandari et al., ZeRO): with P trainable
parameters and Adam, a DDP run with torch AMP keeps fp32 params + fp32 grads + 2 fp32 moments
(16 P bytes); DeepSpeed fp16 keeps fp16 params + fp16 grads (4 P) and an fp32 master copy +
moments (12 P) that ZeRO-1 shards over the world size, ZeRO-2 also shards the grads, and
ZeRO-3 / FSDP full-shard everything. Activations are *measured*: the bytes autograd saves
for backward in one training forward of the student at the given batch and precision,
with EVA-01's fp32 attention/LayerNorm when the config asks for it.
"""
import contextlib
import copy
from typing import Dict, Optional

import torch
import torch.nn as nn

from ..apis.build import build_model, task_of
from .measure import count_saved_activations

GIB = 2**30
STRATEGIES = ('ddp-amp', 'zero1', 'zero2', 'zero3', 'fsdp')


@contextlib.contextmanager
def meta_autocast():
    """``torch.autocast('meta', ...)`` is an error; the backbone's "force fp32" sections open
    one, so on ``meta`` make it a no-op (the explicit ``.float()`` casts still apply)."""
    orig = torch.autocast

    class _Autocast:
        def __new__(cls, device_type, *args, **kwargs):
            if device_type == 'meta':
                return contextlib.nullcontext()
            return orig(device_type, *args, **kwargs)

    torch.autocast = _Autocast
    try:
        yield
    finally:
        torch.autocast = orig


def model_state_bytes(params: int, strategy: str, world_size: int) -> Dict[str, float]:
    """Bytes per GPU of params / grads / optimizer states for Adam(W)."""
    n = max(world_size, 1)
    if strategy == 'ddp-amp':  # mmengine AmpOptimWrapper: fp32 weights, autocast
        return dict(params=4 * params, grads=4 * params, optimizer=8 * params)
    if strategy == 'zero1':
        return dict(params=2 * params, grads=2 * params, optimizer=12 * params / n)
    if strategy == 'zero2':
        return dict(params=2 * params, grads=2 * params / n, optimizer=12 * params / n)
    if strategy in ('zero3', 'fsdp'):  # fp16 shards + fp32 master/moments, all sharded
        return dict(params=2 * params / n, grads=2 * params / n, optimizer=12 * params / n)
    raise ValueError(f'strategy must be one of {STRATEGIES}, got {strategy!r}')


def backbone_activation_bytes(backbone_cfg: dict, batch_size: int, dtype: str = 'fp16',
                              with_cp: Optional[bool] = None, img_size: Optional[int] = None
                              ) -> Dict[str, int]:
    """Build the backbone on ``meta`` in ``dtype``, run a masked training forward and count
    the saved activations. Returns params and activation bytes."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    import projects.eva.models  # noqa: F401  (registers EVAViT)
    cfg = copy.deepcopy(dict(backbone_cfg))
    cfg['type'] = 'mmpretrain.' + cfg['type'].split('.')[-1]  # whatever scope is current
    if with_cp is not None:
        cfg['with_cp'] = with_cp
    dt = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}[dtype]
    with torch.device('meta'), DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg).to(dt)
        size = img_size or model.img_size[0]
        x = torch.randn(batch_size, 3, size, size, dtype=dt)
        mask = None
        if getattr(model, 'mask_token', None) is not None:
            grid = model.grid_size
            mask = torch.zeros(batch_size, grid[0] * grid[1], dtype=torch.bool)
    model.train()
    with meta_autocast(), count_saved_activations(model) as res:
        model(x, mask) if mask is not None else model(x)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return dict(params=params, activations=res['bytes'])


def estimate_pretrain_memory(cfg, batch_size: Optional[int] = None, dtype: str = 'fp16',
                             with_cp: Optional[bool] = None, strategy: str = 'zero1',
                             world_size: int = 128) -> Dict[str, float]:
    """GiB per GPU for the student of an MIM config (``cfg.model.backbone``/``head``) plus
    its frozen teacher in ``dtype``."""
    model_cfg = cfg['model']
    batch_size = batch_size or cfg['train_dataloader']['batch_size']
    act = backbone_activation_bytes(model_cfg['backbone'], batch_size, dtype, with_cp)
    head = model_cfg.get('head', {})
    head_params = (head.get('in_channels', 0) + 1) * head.get('out_channels', 0)
    params = act['params'] + head_params
    states = model_state_bytes(params, strategy, world_size)
    teacher = _teacher_params(model_cfg.get('teacher'))
    itemsize = 4 if dtype == 'fp32' else 2
    out = dict(trainable_params=params, teacher_params=teacher,
               activations=act['activations'] / GIB,
               teacher_weights=teacher * itemsize / GIB,
               **{k: v / GIB for k, v in states.items()})
    out['total'] = sum(out[k] for k in ('activations', 'teacher_weights', 'params', 'grads',
                                        'optimizer'))
    return out


def _teacher_params(teacher_cfg) -> int:
    if not teacher_cfg:
        return 0
    from projects.eva.models.clip_transformer import CLIPVisionTower
    cfg = dict(teacher_cfg)
    cfg.pop('type', None)
    cfg['checkpoint'] = None
    with torch.device('meta'):
        tower = CLIPVisionTower(**cfg)
    return sum(p.numel() for p in tower.parameters())


# ---------------------------------------------------------------- any EVA config
TASKS = ('mim', 'classification', 'zero-shot', 'detection', 'segmentation', 'video')
GPU_TIERS = (24, 40, 80)
# CUDA context, cuDNN/cuBLAS workspaces and allocator fragmentation (typical, not measured)
OVERHEAD_GIB = 2.0
OPTIMIZERS_WITH_TWO_MOMENTS = ('AdamW', 'Adam', 'LAMB', 'Lamb')


def amp_dtype(cfg) -> str:
    """The training precision the config's optim wrapper asks for (fp16/bf16/fp32)."""
    ow = cfg.get('optim_wrapper', {}) or {}
    if ow.get('type') == 'AmpOptimWrapper':
        return {'bfloat16': 'bf16', 'float16': 'fp16', None: 'fp16'}.get(ow.get('dtype'), 'fp16')
    strategy = cfg.get('strategy', {}) or {}
    if 'fp16' in strategy and strategy['fp16'].get('enabled', True):
        return 'fp16'
    mp = (strategy.get('mixed_precision') or {}) if isinstance(strategy, dict) else {}
    if mp:
        return 'bf16' if 'bfloat16' in str(mp.get('param_dtype', '')) else 'fp16'
    return 'fp32'


class LiveBytes:
    """Peak bytes of the tensors alive during a forward (no grad), counted at the dispatcher
    on any device, ``meta`` included: each op output's storage is added once and released
    when the last Python tensor on it dies. Tensors that exist before (weights, the input)
    are not counted."""

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode
        tracker = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for t in torch.utils._pytree.tree_leaves(out):
                    if isinstance(t, torch.Tensor):
                        tracker._track(t)
                return out

        self.mode, self.live, self.current, self.peak = _Mode(), {}, 0, 0
        self._pre = set()

    def _track(self, t):
        import weakref
        key = t.untyped_storage()._cdata
        if key in self._pre:
            return
        entry = self.live.get(key)
        if entry is None:
            entry = self.live[key] = [t.untyped_storage().nbytes(), 0]
            self.current += entry[0]
            self.peak = max(self.peak, self.current)
        entry[1] += 1
        weakref.finalize(t, self._release, key)

    def _release(self, key):
        entry = self.live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self.live[key]

    def __enter__(self):
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self.mode.__exit__(*exc)


def measured_part(cfg, model, batch: int, shape) -> tuple:
    """(name, forward fn, example input) of the part that runs on ``meta``: the whole
    trainable forward where it is meta-safe, else the backbone (+ neck)."""
    task = task_of(cfg)
    with torch.device('meta'):
        x = torch.randn(batch, 3, *shape)
    if task == 'classification':
        return 'backbone + head', lambda t: model.head(model.extract_feat(t)), x
    if task == 'zero-shot':
        return 'image tower + projection', model.encode_image, x
    if task == 'video':
        return 'backbone + head', lambda t: model.cls_head(model.backbone(t)), x
    if task == 'detection':
        heads = ('the DINO transformer needs real tensors: mmcv deformable attention'
                 if cfg.model.get('type') == 'DINO'
                 else 'RPN/RoI heads need real tensors: NMS, RoIAlign')
        return (f'backbone + neck ({heads})',
                lambda t: model.neck(model.backbone(t)), x)
    if task == 'segmentation':  # the ViT-Adapter is meta-safe (its sampling takes int sizes)
        part = ('ViT-Adapter (Mask2Former: mmcv deformable attention needs real tensors)'
                if model.backbone is not getattr(model.backbone, 'vit', model.backbone)
                else 'backbone + neck (decode head not measured)')
        return part, model.extract_feat, x
    raise ValueError(f'no measured part for task {task!r}')


def config_input_shape(cfg, shape=None, mode: str = 'train') -> tuple:
    """(H, W) or (T, H, W): the backbone's ``img_size``; when testing, the detector's
    ``test_pad_size`` (e.g. 1536 for the 1280-trained EVA-01 detector)."""
    bb = cfg.model.get('backbone', cfg.model)
    bb = bb.get('vit', bb)
    if shape:
        return tuple(shape)
    pad = (cfg.model.get('data_preprocessor') or {}).get('test_pad_size')
    if mode == 'test' and pad:
        return tuple(pad)
    size = bb.get('img_size', 224)
    size = (size, size) if isinstance(size, int) else tuple(size)
    frames = bb.get('num_frames')
    return ((frames, ) if frames else ()) + size


def _strategy_key(strategy: str) -> str:
    return {'ddp': 'ddp-amp'}.get(strategy, strategy)


def estimate_config_memory(cfg, mode: str = 'train', batch: Optional[int] = None,
                           dtype: Optional[str] = None, with_cp: Optional[bool] = None,
                           strategy: str = 'ddp', gpus: int = 1, shape=None) -> Dict:
    """GiB per GPU of one EVA config (any task): params, grads, optimizer states (Adam(W);
    sharded by ``strategy`` over ``gpus``) and activations *measured* on ``meta`` through
    the real model's forward: saved-for-backward bytes when training, the peak of live
    tensors in a no-grad forward when testing. ``batch`` defaults to the config's per-GPU
    batch, ``dtype`` to its AMP dtype (fp16/bf16) or fp32."""
    import copy
    if mode not in ('train', 'test'):
        raise ValueError(f'mode must be train or test, got {mode!r}')
    cfg = copy.deepcopy(cfg)
    task = task_of(cfg)
    loader = cfg.get('train_dataloader' if mode == 'train' else 'test_dataloader') or {}
    batch = batch or loader.get('batch_size', 1)
    dtype = dtype or amp_dtype(cfg)
    key = _strategy_key(strategy)
    if task == 'mim':
        if mode != 'train':
            raise ValueError('MIM configs are training-only')
        r = estimate_pretrain_memory(cfg, batch, dtype, with_cp, key, gpus)
        return dict(task=task, mode=mode, batch=batch, dtype=dtype, strategy=strategy,
                    gpus=gpus, part='student backbone (teacher weights added, no grad)',
                    shape=config_input_shape(cfg, shape),
                    with_cp=with_cp if with_cp is not None else bool(
                        cfg.model.backbone.get('with_cp', False)),
                    params=r['trainable_params'] + r['teacher_params'],
                    trainable=r['trainable_params'],
                    weights=r['params'] + r['teacher_weights'], grads=r['grads'],
                    optimizer=r['optimizer'], activations=r['activations'],
                    per_sample=r['activations'] / batch, total=r['total'],
                    tier=gpu_tier(r['total']))
    bb = cfg.model.backbone
    vit = bb.get('vit', bb)
    if with_cp is not None:
        vit['with_cp'] = with_cp
        if 'with_cp' in bb and bb is not vit:
            bb['with_cp'] = with_cp
    shape = config_input_shape(cfg, shape, mode)
    if mode == 'test' and 'img_size' in vit and not task == 'video':
        vit['img_size'] = shape[-2:]  # the eval grid (e.g. 1536 for a 1280-trained model)
    model = build_model(cfg, device='meta')
    dt = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}[dtype]
    model = model.to(dt)
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    part, fn, x = measured_part(cfg, model, batch, shape)  # (B, 3, [T,] H, W)
    x = x.to(dt)
    if mode == 'train':
        model.train()
        with meta_autocast(), count_saved_activations(model) as res:
            fn(x)
        act = res['bytes']
        states = model_state_bytes(trainable, key, gpus)
        n = max(gpus, 1) if key in ('zero3', 'fsdp') else 1
        frozen = (params - trainable) * (4 if key == 'ddp-amp' else 2) / n
        weights, grads, optim = (states['params'] + frozen, states['grads'],
                                 states['optimizer'])
    else:
        model.eval()
        with torch.no_grad(), meta_autocast(), LiveBytes() as live:
            fn(x)
        act = live.peak
        weights, grads, optim = params * dt.itemsize, 0, 0
    out = dict(task=task, mode=mode, batch=batch, dtype=dtype, strategy=strategy, gpus=gpus,
               part=part, shape=shape, with_cp=bool(vit.get('with_cp', False)),
               params=params, trainable=trainable, weights=weights / GIB, grads=grads / GIB,
               optimizer=optim / GIB, activations=act / GIB, per_sample=act / batch / GIB)
    out['total'] = out['weights'] + out['grads'] + out['optimizer'] + out['activations']
    out['tier'] = gpu_tier(out['total'])
    return out


def gpu_tier(total_gib: float, overhead: float = OVERHEAD_GIB) -> Optional[int]:
    """Smallest of 24 / 40 / 80 GB (GiB-sized here) that holds ``total`` + overhead."""
    for tier in GPU_TIERS:
        if total_gib + overhead <= tier:
            return tier
    return None
