"""EVA-01 layer-wise learning-rate decay, written once for every task.

Registered in mmengine's root registry, so mmpretrain, mmdet, mmseg and mmaction2 configs all
find it. The layer id of a parameter comes from ``model.backbone.get_layer_depth`` (EVA-01:
pos/cls/patch embeddings 0, block k -> k + 1, everything else -- norms, neck, heads -- the top
id with scale 1), and a parameter's lr is ``lr * layer_decay_rate ** (top - id)``.
"""
import numbers
from typing import List

import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS


def _number(key: str, value) -> float:
    """A config value used in arithmetic must be a real number: a string such as '1e-3x'
    from a config or ``--cfg-options`` otherwise failed with "can't multiply sequence by
    non-int of type 'float'"."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f'{key} must be a number, got {value!r} ({type(value).__name__})')
    return float(value)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class EVALayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """One param group per trainable parameter, with EVA-01's layer scale and decay rule.

    ``paramwise_cfg``:
        layer_decay_rate (float): 0.85 (IN-21K), 0.95 (IN-1K, seg, video), 0.9 (det).
        no_decay_1d (bool): no weight decay on 1-D tensors and biases (cls, video, MIM).
            Detection sets False: EVA-01 decays every parameter there.
        no_decay_keys (tuple[str]): names (substrings) without weight decay, e.g.
            ``('pos_embed', 'cls_token')``.
        custom_keys (dict): ``{substring: dict(lr_mult=..., decay_mult=...)}`` applied on top.
    """

    KEYS = ('layer_decay_rate', 'no_decay_1d', 'no_decay_keys', 'custom_keys')

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg=None):
        unknown = sorted(set(paramwise_cfg or {}) - set(self.KEYS))
        if unknown:  # mmengine would ignore them: a typo kept the default silently
            import difflib
            hints = '; '.join(f'{k!r}: did you mean {m[0]!r}?' if m else f'{k!r}: unknown'
                              for k in unknown
                              for m in [difflib.get_close_matches(k, self.KEYS, n=1)])
            raise KeyError(f'optim_wrapper.paramwise_cfg: {type(self).__name__} reads '
                           f'only {list(self.KEYS)}; {hints}')
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '', **kwargs):
        if is_model_wrapper(module):
            module = module.module
        cfg = dict(self.paramwise_cfg or {})
        rate = cfg.get('layer_decay_rate', 1.0)
        no_decay_1d = cfg.get('no_decay_1d', True)
        no_decay_keys = tuple(cfg.get('no_decay_keys', ()))
        custom_keys = cfg.get('custom_keys', {})
        backbone = getattr(module, 'backbone', None)
        if backbone is None or not hasattr(backbone, 'get_layer_depth'):
            raise TypeError(f'{type(module).__name__} has no backbone with get_layer_depth; '
                            'EVALayerDecayOptimWrapperConstructor needs an EVAViT backbone')
        base_lr = _number('optim_wrapper.optimizer.lr', self.optimizer_cfg.get('lr'))
        base_wd = _number('optim_wrapper.optimizer.weight_decay',
                          self.optimizer_cfg.get('weight_decay', 0.))
        rate = _number('optim_wrapper.paramwise_cfg.layer_decay_rate', rate)
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            layer_id, num_ids = backbone.get_layer_depth(name, 'backbone.')
            scale = rate ** (num_ids - 1 - layer_id)
            decay = not ((no_decay_1d and (param.ndim == 1 or name.endswith('.bias')))
                         or any(k in name for k in no_decay_keys))
            lr_mult = decay_mult = 1.0
            for key, mults in custom_keys.items():
                if key in name:
                    where = f'optim_wrapper.paramwise_cfg.custom_keys[{key!r}]'
                    lr_mult = _number(f'{where}.lr_mult', mults.get('lr_mult', 1.0))
                    decay_mult = _number(f'{where}.decay_mult', mults.get('decay_mult', 1.0))
                    break
            params.append(dict(params=[param], param_name=name, layer_id=layer_id,
                               lr_scale=scale, lr=base_lr * scale * lr_mult,
                               weight_decay=base_wd * decay_mult if decay else 0.))
