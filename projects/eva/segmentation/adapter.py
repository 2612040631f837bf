"""ViT-Adapter around EVAViT, as EVA-01 used it for Mask2Former (``BEiTAdapter``).

The adapter adds a convolutional spatial prior (SPM: maps at strides 4/8/16/32) and, around
each of four groups of ViT blocks, an *injector* (ViT tokens attend to the SPM maps) and an
*extractor* (SPM tokens attend to the ViT tokens, then a depth-wise ConvFFN), both with
multi-scale deformable attention whose value width is ``deform_ratio`` x the ViT width. The
ViT itself is an unmodified :class:`EVAViT`: the adapter calls its public ``embed`` and
``forward_blocks`` (one group of blocks at a time). The cls token skips the injector and extractor but goes through the blocks
(EVA-01's ``InteractionBlockWithCls``); it gets no position embedding, as in EVA-01.
Sub-module names follow the official checkpoint (``spm``, ``level_embed``,
``interactions.N.{injector,extractor,extra_extractors}``, ``up``, ``norm1..4``).
"""
import math
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ..models.eva_vit import DropPath
from .ms_deform_attn import MSDeformAttn

STRIDES = (8, 16, 32)  # SPM levels the ViT tokens interact with


def reference_points(shapes: Sequence[Tuple[int, int]], device) -> torch.Tensor:
    """Pixel centres of each (h, w) grid, normalised to [0, 1], as (1, sum(h*w), 1, 2) (x, y)."""
    refs = []
    for h, w in shapes:
        ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32) + 0.5,
                                torch.arange(w, device=device, dtype=torch.float32) + 0.5,
                                indexing='ij')
        refs.append(torch.stack([xs.flatten() / w, ys.flatten() / h], -1))
    return torch.cat(refs)[None, :, None]


class SpatialPriorModule(nn.Module):
    """ResNet-like stem giving c1..c4 at strides 4, 8, 16, 32, each projected to the ViT
    width by a 1x1 conv (``fc1..fc4``)."""

    def __init__(self, inplanes: int, embed_dims: int, norm_cfg: dict):
        super().__init__()

        def conv_bn_relu(cin, cout, stride):
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                    build_norm_layer(norm_cfg, cout)[1], nn.ReLU(inplace=True)]

        self.stem = nn.Sequential(*conv_bn_relu(3, inplanes, 2), *conv_bn_relu(inplanes, inplanes, 1),
                                  *conv_bn_relu(inplanes, inplanes, 1), nn.MaxPool2d(3, 2, 1))
        self.conv2 = nn.Sequential(*conv_bn_relu(inplanes, 2 * inplanes, 2))
        self.conv3 = nn.Sequential(*conv_bn_relu(2 * inplanes, 4 * inplanes, 2))
        self.conv4 = nn.Sequential(*conv_bn_relu(4 * inplanes, 4 * inplanes, 2))
        self.fc1 = nn.Conv2d(inplanes, embed_dims, 1)
        self.fc2 = nn.Conv2d(2 * inplanes, embed_dims, 1)
        self.fc3 = nn.Conv2d(4 * inplanes, embed_dims, 1)
        self.fc4 = nn.Conv2d(4 * inplanes, embed_dims, 1)

    def forward(self, x):
        c1 = self.stem(x)
        c2 = self.conv2(c1)
        c3 = self.conv3(c2)
        c4 = self.conv4(c3)
        return self.fc1(c1), self.fc2(c2), self.fc3(c3), self.fc4(c4)


class DWConv(nn.Module):
    """3x3 depth-wise conv applied to each level of the flattened multi-level tokens."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x, shapes):
        b, _, c = x.shape
        outs, start = [], 0
        for h, w in shapes:
            level = x[:, start:start + h * w].transpose(1, 2).reshape(b, c, h, w)
            outs.append(self.dwconv(level).flatten(2).transpose(1, 2))
            start += h * w
        return torch.cat(outs, dim=1)


class ConvFFN(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DWConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x, shapes):
        return self.fc2(self.act(self.dwconv(self.fc1(x), shapes)))


def _maybe_checkpoint(fn, with_cp, *args):
    if with_cp and any(a.requires_grad for a in args if isinstance(a, torch.Tensor)):
        return cp.checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


class Injector(nn.Module):
    """ViT tokens (queries) gather from the SPM levels; added with a zero-init ``gamma``."""

    def __init__(self, dim, num_heads, n_points, n_levels, ratio, norm_cfg, init_values=0.,
                 with_cp=False):
        super().__init__()
        self.with_cp = with_cp
        self.query_norm = build_norm_layer(norm_cfg, dim)[1]
        self.feat_norm = build_norm_layer(norm_cfg, dim)[1]
        self.attn = MSDeformAttn(dim, n_levels, num_heads, n_points, ratio)
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, query, feat, ref, spatial):
        def inner(query, feat):
            return query + self.gamma * self.attn(self.query_norm(query), ref,
                                                  self.feat_norm(feat), spatial)
        return _maybe_checkpoint(inner, self.with_cp, query, feat)


class Extractor(nn.Module):
    """SPM tokens (queries) gather from the ViT tokens, then a ConvFFN with drop path."""

    def __init__(self, dim, num_heads, n_points, ratio, norm_cfg, cffn_ratio=0.25,
                 drop_path=0., with_cp=False):
        super().__init__()
        self.with_cp = with_cp
        self.query_norm = build_norm_layer(norm_cfg, dim)[1]
        self.feat_norm = build_norm_layer(norm_cfg, dim)[1]
        self.attn = MSDeformAttn(dim, 1, num_heads, n_points, ratio)
        self.ffn = ConvFFN(dim, int(dim * cffn_ratio))
        self.ffn_norm = build_norm_layer(norm_cfg, dim)[1]
        self.drop_path = DropPath(drop_path)

    def forward(self, query, feat, ref, spatial, shapes):
        def inner(query, feat):
            query = query + self.attn(self.query_norm(query), ref, self.feat_norm(feat),
                                      spatial)
            return query + self.drop_path(self.ffn(self.ffn_norm(query), shapes))
        return _maybe_checkpoint(inner, self.with_cp, query, feat)


class InteractionBlock(nn.Module):
    """Injector -> a group of ViT blocks -> extractor (+ 2 extra extractors at the end)."""

    def __init__(self, dim, num_heads, n_points, ratio, norm_cfg, cffn_ratio, drop_path,
                 init_values, extra_extractor, with_cp):
        super().__init__()
        self.injector = Injector(dim, num_heads, n_points, len(STRIDES), ratio, norm_cfg,
                                 init_values, with_cp)
        self.extractor = Extractor(dim, num_heads, n_points, ratio, norm_cfg, cffn_ratio,
                                   drop_path, with_cp)
        self.extra_extractors = nn.Sequential(*[
            Extractor(dim, num_heads, n_points, ratio, norm_cfg, cffn_ratio, drop_path, with_cp)
            for _ in range(2)]) if extra_extractor else None


@MODELS.register_module()
class EVAAdapter(BaseModule):
    """EVA-01 ViT-Adapter: an :class:`EVAViT` plus SPM/injectors/extractors, returning four
    maps of the ViT width at strides 4, 8, 16, 32 for Mask2Former.

    Args:
        vit: config of the ``mmpretrain.EVAViT`` (patch 16, ``final_norm=False``); its
            ``init_cfg`` loads the pretrained ViT.
        interaction_indexes: [first, last] block of each of the four groups
            (EVA-01: [[0, 9], [10, 19], [20, 29], [30, 39]]).
        conv_inplane: SPM width (64). deform_num_heads / n_points / deform_ratio: deformable
            attention (16 / 4 / 0.5). cffn_ratio: ConvFFN hidden ratio (0.25).
        drop_path_rate: drop path of the extractors' ConvFFN (EVA-01 uses the ViT's 0.5).
        inj_init_values: injector ``gamma`` init (0: the adapter starts as the plain ViT).
        add_vit_feature: add the resized ViT group outputs to the SPM maps.
        norm_cfg: the SPM and output norms (SyncBN in EVA-01). with_cp: checkpoint the
            injectors/extractors (the ViT blocks follow ``vit.with_cp``).
    """

    # the backbone protocol (projects.eva.apis.build): the EVAViT it wraps is ``self.vit``;
    # inputs must be multiples of 32 (the SPM's stride-32 level and the 1/32 deformable maps)
    size_divisor = 32

    def __init__(self, vit: dict, interaction_indexes: Sequence[Sequence[int]],
                 conv_inplane: int = 64, deform_num_heads: int = 16, n_points: int = 4,
                 deform_ratio: float = 0.5, cffn_ratio: float = 0.25,
                 drop_path_rate: float = 0., inj_init_values: float = 0.,
                 add_vit_feature: bool = True, norm_cfg: dict = dict(type='SyncBN'),
                 ln_cfg: dict = dict(type='LN', eps=1e-6), with_cp: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        vit = dict(vit)
        if '.' not in vit.get('type', 'EVAViT'):
            vit['type'] = 'mmpretrain.' + vit.get('type', 'EVAViT')
        self.vit = MODELS.build(vit)
        if self.vit.patch_size != 16:
            raise ValueError(f'the ViT-Adapter needs a patch-16 ViT (stride 16 between the SPM '
                             f'levels 8 and 32), got patch_size {self.vit.patch_size}')
        if self.vit.norm is not None or self.vit.fc_norm is not None:
            raise ValueError('build the adapter ViT with final_norm=False and out_type="raw": '
                             'the adapter reads the block outputs directly')
        if self.vit.num_frames:
            raise ValueError('the ViT-Adapter works on images, not video (num_frames)')
        groups = [list(g) for g in interaction_indexes]
        flat = [i for first, last in groups for i in range(first, last + 1)]
        if flat != list(range(self.vit.num_layers)):
            raise ValueError(f'interaction_indexes {groups} must split blocks 0..'
                             f'{self.vit.num_layers - 1} into consecutive groups')
        self.interaction_indexes = groups
        self.add_vit_feature = add_vit_feature
        dim = self.vit.embed_dims
        self.level_embed = nn.Parameter(torch.zeros(len(STRIDES), dim))
        self.spm = SpatialPriorModule(conv_inplane, dim, norm_cfg)
        self.interactions = nn.Sequential(*[
            InteractionBlock(dim, deform_num_heads, n_points, deform_ratio, ln_cfg, cffn_ratio,
                             drop_path_rate, inj_init_values, i == len(groups) - 1, with_cp)
            for i in range(len(groups))])
        self.up = nn.ConvTranspose2d(dim, dim, 2, 2)
        for i in range(1, 5):
            self.add_module(f'norm{i}', build_norm_layer(norm_cfg, dim)[1])

    # ------------------------------------------------------------------ init / layer decay
    def init_weights(self):
        """ViT: its own init / pretrained weights. Adapter: EVA-01's (trunc-normal 0.02
        linears, He-normal convs, Deformable-DETR attention, normal level embedding)."""
        self.vit.init_weights()
        for module in (self.spm, self.interactions, self.up):
            for m in module.modules():
                if isinstance(m, nn.Linear):
                    nn.init.trunc_normal_(m.weight, std=.02)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                    fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                    nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, MSDeformAttn):
                m.reset_parameters()
        nn.init.normal_(self.level_embed)
        self._is_init = True

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """EVA-01 layer ids: the ViT's own, adapter parameters at the top (scale 1)."""
        if param_name.startswith(prefix + 'vit.'):
            return self.vit.get_layer_depth(param_name, prefix + 'vit.')
        num = self.vit.num_layers + 2
        return num - 1, num

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        b, _, h, w = x.shape
        if h % self.size_divisor or w % self.size_divisor:
            raise ValueError(f'ViT-Adapter input must be a multiple of {self.size_divisor}, '
                             f'got {h}x{w} (pad it, e.g. size_divisor={self.size_divisor} in '
                             'the data preprocessor)')
        vit = self.vit
        shapes = [(h // s, w // s) for s in STRIDES]
        hw = shapes[1]
        # the deformable attention takes the level sizes as Python ints (``shapes`` for the
        # injectors, ``[hw]`` for the extractors), so the adapter exports
        ref_inj = reference_points([hw], x.device)
        ref_ext = reference_points(shapes, x.device)

        c1, c2, c3, c4 = self.spm(x)
        c = torch.cat([lvl.flatten(2).transpose(1, 2) + self.level_embed[i]
                       for i, lvl in enumerate((c2, c3, c4))], dim=1)

        tokens, grid = vit.embed(x, cls_pos=False)  # EVA-01: the cls token has no position
        extra = vit.num_extra_tokens
        cls, tokens = tokens[:, :extra], tokens[:, extra:]

        outs = []
        for (first, last), layer in zip(self.interaction_indexes, self.interactions):
            tokens = layer.injector(tokens, c, ref_inj, shapes)
            tokens = vit.forward_blocks(torch.cat([cls, tokens], dim=1), grid, first, last + 1)
            cls, tokens = tokens[:, :extra], tokens[:, extra:]
            extractors = [layer.extractor] + list(layer.extra_extractors or [])
            for extractor in extractors:
                c = extractor(c, tokens, ref_ext, [hw], shapes)
            outs.append(tokens.transpose(1, 2).reshape(b, -1, *hw))

        sizes = [s[0] * s[1] for s in shapes]
        c2, c3, c4 = [t.transpose(1, 2).reshape(b, -1, *s)
                      for t, s in zip(torch.split(c, sizes, dim=1), shapes)]
        c1 = self.up(c2) + c1
        feats = [c1, c2, c3, c4]
        if self.add_vit_feature:
            for i, (f, v) in enumerate(zip(feats, outs)):
                feats[i] = f + F.interpolate(v, size=f.shape[-2:], mode='bilinear',
                                             align_corners=False)
        return tuple(getattr(self, f'norm{i + 1}')(f) for i, f in enumerate(feats))
