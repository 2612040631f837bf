"""Classifier head of EVA-01 video: a linear layer on the backbone's pooled feature."""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
from mmaction.models.heads import TimeSformerHead
from mmaction.registry import MODELS
from mmengine.logging import print_log

from .class_mapping import load_class_mapping, select_classes


@MODELS.register_module()
class EVAVideoHead(TimeSformerHead):
    """``TimeSformerHead`` for ``EVAViT(out_type='avg_featmap')``.

    The backbone returns a tuple with one pooled (B, C) feature (one out index); several
    are refused rather than one picked silently. The classifier starts as in EVA-01
    (trunc-normal std 0.02 scaled by ``init_scale`` = 0.001, so fine-tuning starts from
    near-uniform scores).

    ``class_mapping``: when a checkpoint's classifier has more rows than ``num_classes``
    (the K722 head loaded into a K400/600/700 model) the rows of the target classes are
    selected with this mapping (see :mod:`.class_mapping`); without a mapping such a head is
    dropped with a warning, as EVA-01 does.
    """

    def __init__(self, num_classes: int, in_channels: int, init_std: float = 0.02,
                 init_scale: float = 0.001,
                 class_mapping: Optional[Union[str, Sequence[int]]] = None, **kwargs):
        super().__init__(num_classes, in_channels, init_std=init_std, **kwargs)
        self.init_scale = init_scale
        self.class_mapping = class_mapping
        self._register_load_state_dict_pre_hook(self._map_classes)

    def init_weights(self) -> None:
        nn.init.trunc_normal_(self.fc_cls.weight, std=self.init_std)
        nn.init.zeros_(self.fc_cls.bias)
        self.fc_cls.weight.data.mul_(self.init_scale)

    def forward(self, x: Union[torch.Tensor, Sequence[torch.Tensor]], **kwargs) -> torch.Tensor:
        if isinstance(x, (tuple, list)):  # the backbone's tuple: exactly one pooled feature
            if len(x) != 1:
                raise ValueError(f'EVAVideoHead classifies one pooled feature, the backbone gave '
                                 f'{len(x)}: set its out_indices to one block (e.g. -1)')
            x = x[0]
        if x.ndim != 2 or x.shape[1] != self.in_channels:
            raise ValueError(f'EVAVideoHead expects pooled features (N, {self.in_channels}); '
                             f'got {tuple(x.shape)} (use EVAViT out_type="avg_featmap")')
        return super().forward(x)

    def _map_classes(self, state_dict, prefix, *args, **kwargs):
        keys = [prefix + 'fc_cls.weight', prefix + 'fc_cls.bias']
        present = [k for k in keys if k in state_dict]
        if not present or state_dict[present[0]].shape[0] == self.num_classes:
            return
        rows = state_dict[present[0]].shape[0]
        if self.class_mapping is None:
            for k in present:
                state_dict.pop(k)
            print_log(f'{prefix}fc_cls: checkpoint has {rows} classes, the model '
                      f'{self.num_classes} and no class_mapping is set: classifier not loaded',
                      logger='current', level=30)
            return
        mapping = load_class_mapping(self.class_mapping)
        for k in present:
            state_dict[k] = select_classes(state_dict[k], mapping, self.num_classes, k)
        print_log(f'{prefix}fc_cls: {self.num_classes} of {rows} checkpoint classes selected '
                  f'with {self.class_mapping if isinstance(self.class_mapping, str) else "the mapping"}',
                  logger='current')
