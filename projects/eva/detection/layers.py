"""Channels-first LayerNorm and the ViTDet simple feature pyramid, registered in mmdet.

The pyramid turns EVA's single stride-16 map into strides 4, 8, 16, 32 (+ a max-pooled 64)
with deconvolutions / pooling, each followed by a 1x1 and a 3x3 conv with LayerNorm
(ViTDet's ``SimpleFeaturePyramid`` as EVA-01 used it: ``scale_factors (4, 2, 1, 0.5)``,
``norm="LN"``, ``LastLevelMaxPool``).
"""
from typing import Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmdet.registry import MODELS
from mmengine.model import BaseModule


@MODELS.register_module()
class LN2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (detectron2's ``LayerNorm``, eps 1e-6).

    mmcv's ``LN`` normalises the last dimension, which is wrong for NCHW features, and
    mmpretrain's ``LN2d`` lives in a sibling registry that mmdet configs do not see.

    The output is a *dense* NCHW tensor: the permuted view that ``F.layer_norm`` works on is
    channels-last in memory, and mmcv 2.1.0's ``roi_align`` (CPU and CUDA) reads its input
    as dense NCHW whatever its strides, so returning the view made every RoI feature read
    the wrong memory (docs/mmcv_ops_audit.md).
    """

    def __init__(self, num_features: int, eps: float = 1e-6, **kwargs):
        super().__init__(num_features, eps=eps, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f'LN2d expects an NCHW tensor, got shape {tuple(x.shape)}')
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight,
                         self.bias, self.eps)
        return x.permute(0, 3, 1, 2).contiguous()


def dense_nchw(feats: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
    """The maps as dense NCHW tensors (a no-op for those already dense), for mmcv ops that
    index ``data_ptr()`` as NCHW and ignore strides (``roi_align``): a channels-last or
    permuted map would be read as the wrong pixels without any error."""
    return tuple(f if f.is_contiguous() else f.contiguous() for f in feats)


@MODELS.register_module()
class SimpleFeaturePyramid(BaseModule):
    """Feature pyramid from one plain-ViT map (ViTDet).

    Args:
        in_channels: channels of the backbone map (1408 for EVA-g).
        out_channels: pyramid channels (256).
        scale_factors: resampling of the stride-16 map per level; 4 -> two 2x2 deconvs
            (C -> C/2 -> C/4, norm + GELU between), 2 -> one deconv (C/2), 1 -> identity,
            0.5 -> 2x2 max-pool.
        num_outs: levels returned; one more than ``len(scale_factors)`` adds the P6 level
            (stride-2 max-pool of the last map, 1x1 kernel, as detectron2's LastLevelMaxPool).
        norm_cfg: norm after every conv (and between the two scale-4 deconvs); None for
            plain convs with bias (detectron2's ``norm=""``).
        in_index: which backbone output to use when the backbone returns several.
    """

    def __init__(self, in_channels: int, out_channels: int = 256,
                 scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
                 num_outs: int = 5, norm_cfg: dict = dict(type='LN2d', eps=1e-6),
                 in_index: int = -1, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if num_outs not in (len(scale_factors), len(scale_factors) + 1):
            raise ValueError(f'num_outs must be {len(scale_factors)} or '
                             f'{len(scale_factors) + 1}, got {num_outs}')
        if norm_cfg is not None:
            norm_cfg = dict(norm_cfg)
            if isinstance(norm_cfg['type'], str):  # resolve in mmdet's registry, any scope
                norm_cfg['type'] = MODELS.get(norm_cfg['type'])
        self.scale_factors = tuple(scale_factors)
        self.num_outs = num_outs
        self.in_index = in_index
        self.resamplers = nn.ModuleList()
        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for scale in self.scale_factors:
            dim = in_channels
            if scale == 4.0:
                layers = [nn.ConvTranspose2d(dim, dim // 2, 2, 2),
                          build_norm_layer(norm_cfg, dim // 2)[1] if norm_cfg else nn.Identity(),
                          nn.GELU(), nn.ConvTranspose2d(dim // 2, dim // 4, 2, 2)]
                dim //= 4
            elif scale == 2.0:
                layers = [nn.ConvTranspose2d(dim, dim // 2, 2, 2)]
                dim //= 2
            elif scale == 1.0:
                layers = []
            elif scale == 0.5:
                layers = [nn.MaxPool2d(2, 2)]
            else:
                raise ValueError(f'unsupported scale factor {scale}; use 4, 2, 1 or 0.5')
            self.resamplers.append(nn.Sequential(*layers))
            self.lateral_convs.append(ConvModule(dim, out_channels, 1, norm_cfg=norm_cfg,
                                                 act_cfg=None))
            self.fpn_convs.append(ConvModule(out_channels, out_channels, 3, padding=1,
                                             norm_cfg=norm_cfg, act_cfg=None))

    def forward(self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]]) -> Tuple[torch.Tensor]:
        x = inputs if isinstance(inputs, torch.Tensor) else inputs[self.in_index]
        if x.ndim != 4:
            raise ValueError(f'SimpleFeaturePyramid expects an NCHW map (backbone '
                             f"out_type='featmap'), got shape {tuple(x.shape)}")
        if 0.5 in self.scale_factors and min(x.shape[-2:]) < 2:
            raise ValueError(f'the backbone map {tuple(x.shape[-2:])} is too small for the '
                             'stride-2 pooled level: the input needs at least 2 patches per '
                             'side (pad test images, e.g. test_pad_size)')
        outs = [fpn(lat(res(x))) for res, lat, fpn in
                zip(self.resamplers, self.lateral_convs, self.fpn_convs)]
        if self.num_outs > len(outs):
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        # the RoI extractors hand these maps to mmcv's roi_align, which ignores strides: a
        # channels_last input (or norm) would otherwise reach it as channels-last memory
        return dense_nchw(outs)
