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
    from mmpretrain.registry import MODELS
    import projects.eva.models  # noqa: F401  (registers EVAViT)
    cfg = copy.deepcopy(dict(backbone_cfg))
    if with_cp is not None:
        cfg['with_cp'] = with_cp
    dt = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}[dtype]
    with torch.device('meta'):
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
