"""Classification heads with EVA-01's initialisation."""
import torch
import torch.nn as nn
from mmpretrain.models.heads import ClsHead, LinearClsHead
from mmpretrain.registry import MODELS


@MODELS.register_module()
class EVAClsHead(LinearClsHead):
    """Linear head on ``fc_norm``-ed mean-pooled tokens; EVA-01 init: truncated normal
    (std 0.02) scaled by ``init_scale`` (0.001), so fine-tuning starts near uniform logits."""

    def __init__(self, num_classes: int, in_channels: int, init_scale: float = 0.001,
                 init_std: float = 0.02, **kwargs):
        kwargs.setdefault('init_cfg', None)
        super().__init__(num_classes, in_channels, **kwargs)
        self.init_scale = init_scale
        self.init_std = init_std

    def init_weights(self):
        if self.init_cfg is not None:
            return super().init_weights()
        nn.init.trunc_normal_(self.fc.weight, std=self.init_std)
        nn.init.zeros_(self.fc.bias)
        with torch.no_grad():
            self.fc.weight.mul_(self.init_scale)


@MODELS.register_module()
class EVALinearProbeHead(ClsHead):
    """Linear probing as EVA-01: cls token after the final LN -> BatchNorm1d without affine
    (eps 1e-6) -> Linear (normal init, std 0.01)."""

    def __init__(self, num_classes: int, in_channels: int, **kwargs):
        kwargs.setdefault('init_cfg', None)
        super().__init__(**kwargs)
        self.bn = nn.BatchNorm1d(in_channels, affine=False, eps=1e-6)
        self.fc = nn.Linear(in_channels, num_classes)

    def init_weights(self):
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, feats):
        return self.fc(self.bn(self.pre_logits(feats)))
