"""Multi-scale deformable attention whose value width can differ from the query width.

EVA-01's ViT-Adapter projects values to ``ratio * embed_dims`` (``deform_ratio=0.5``: 704 of
1408 channels) before sampling, and projects back afterwards. mmcv's
``MultiScaleDeformableAttention`` always keeps ``embed_dims``, so this module owns the
projections (names as in the official ``MSDeformAttn``: ``sampling_offsets``,
``attention_weights``, ``value_proj``, ``output_proj``). Sampling: mmcv's compiled CUDA op on
GPU, :func:`sample_levels` elsewhere; both accept any per-head width.

The level sizes are Python ints (``[(h, w), ...]``), not mmcv's ``spatial_shapes`` tensor:
split sizes and reshapes are then plain ints, so torch.export / ONNX can trace the adapter
(mmcv's PyTorch path reads them out of the tensor, a data-dependent size the exporter
cannot follow). :func:`sample_levels` equals mmcv's ``multi_scale_deformable_attn_pytorch``
(tests/segmentation/test_segmentation.py).
"""
import math
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction

Shapes = Sequence[Tuple[int, int]]


def sample_levels(value: torch.Tensor, shapes: Shapes, sampling_locations: torch.Tensor,
                  attention_weights: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of every level (``grid_sample``, zeros outside, pixel centres at
    (i + 0.5) / size), weighted and summed over levels and points, with the level sizes as
    Python ints: (B, Lin, heads, d) -> (B, Lq, heads * d)."""
    b, _, heads, d = value.shape
    _, lq, _, levels, points, _ = sampling_locations.shape
    grids = sampling_locations.mul(2).sub(1)  # [0, 1] -> grid_sample's [-1, 1]
    per_level = torch.split(value, [h * w for h, w in shapes], dim=1)
    sampled = []
    for lvl, (h, w) in enumerate(shapes):
        v = per_level[lvl].permute(0, 2, 3, 1).reshape(b * heads, d, h, w)
        g = grids[:, :, :, lvl].transpose(1, 2).reshape(b * heads, lq, points, 2)
        sampled.append(F.grid_sample(v, g, mode='bilinear', padding_mode='zeros',
                                     align_corners=False))  # (B*heads, d, Lq, points)
    weights = attention_weights.transpose(1, 2).reshape(b * heads, 1, lq, levels * points)
    out = (torch.cat(sampled, dim=-1) * weights).sum(-1)  # (B*heads, d, Lq)
    return out.view(b, heads * d, lq).transpose(1, 2).contiguous()


def ms_deform_attn_core(value: torch.Tensor, shapes: Shapes, sampling_locations: torch.Tensor,
                        attention_weights: torch.Tensor, im2col_step: int = 64) -> torch.Tensor:
    """Sample and weight values: (B, Lin, heads, d) -> (B, Lq, heads * d).

    ``sampling_locations`` (B, Lq, heads, levels, points, 2) are normalised (x, y) in [0, 1]
    (0.5 / W is the centre of the first pixel), out-of-map samples read zeros.
    """
    if value.is_cuda:  # mmcv's op takes the sizes and level offsets as tensors
        spatial = torch.as_tensor(shapes, dtype=torch.long, device=value.device)
        sizes = spatial.prod(1)
        start = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
        return MultiScaleDeformableAttnFunction.apply(
            value, spatial, start, sampling_locations, attention_weights, im2col_step)
    return sample_levels(value, shapes, sampling_locations, attention_weights)


class MSDeformAttn(nn.Module):
    """Deformable attention over ``num_levels`` flattened maps (Deformable DETR), with a
    value width of ``int(embed_dims * ratio)``.

    Args:
        embed_dims: query / output width.
        num_levels, num_heads, num_points: sampling layout.
        ratio: value width / ``embed_dims`` (EVA-01 ViT-Adapter: 0.5).
    """

    def __init__(self, embed_dims: int = 256, num_levels: int = 4, num_heads: int = 8,
                 num_points: int = 4, ratio: float = 1.0, im2col_step: int = 64):
        super().__init__()
        self.value_dims = int(embed_dims * ratio)
        if self.value_dims % num_heads:
            raise ValueError(f'value width {self.value_dims} (embed_dims {embed_dims} x ratio '
                             f'{ratio}) is not divisible by num_heads {num_heads}')
        self.embed_dims = embed_dims
        self.num_levels = num_levels
        self.num_heads = num_heads
        self.num_points = num_points
        self.ratio = ratio
        self.im2col_step = im2col_step
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dims, self.value_dims)
        self.output_proj = nn.Linear(self.value_dims, embed_dims)
        self.reset_parameters()

    def reset_parameters(self):
        """Deformable DETR init: zero offsets weights, biases pointing each head in its own
        direction at distances 1..num_points, uniform attention, xavier projections."""
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2 * math.pi / self.num_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = grid / grid.abs().max(-1, keepdim=True)[0]
        grid = grid.view(self.num_heads, 1, 1, 2).repeat(1, self.num_levels, self.num_points, 1)
        grid *= torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(self, query: torch.Tensor, reference_points: torch.Tensor,
                feat: torch.Tensor, shapes: Shapes, padding_mask=None) -> torch.Tensor:
        """
        Args:
            query: (B, Lq, C).
            reference_points: (B or 1, Lq, num_levels or 1, 2), normalised (x, y); one
                point is shared by all levels.
            feat: (B, sum(h_l * w_l), C), the levels flattened and concatenated.
            shapes: ``[(h_l, w_l), ...]``, the levels' sizes as ints.
            padding_mask: optional (B, Lin) bool, True = padding (reads zero).
        Returns:
            (B, Lq, C).
        """
        b, lq, c = query.shape
        lin = feat.shape[1]
        if c != self.embed_dims or feat.shape[-1] != self.embed_dims:
            raise ValueError(f'query {tuple(query.shape)} / feat {tuple(feat.shape)} do not have '
                             f'embed_dims={self.embed_dims} channels')
        shapes = [tuple(s) for s in shapes]
        if len(shapes) != self.num_levels or any(len(s) != 2 for s in shapes):
            raise ValueError(f'shapes must be {self.num_levels} (h, w) pairs, got {shapes}')
        tokens = sum(h * w for h, w in shapes)
        if tokens != lin:
            raise ValueError(f'feat has {lin} tokens but shapes {shapes} describe {tokens}')
        if (reference_points.ndim != 4 or reference_points.shape[1] != lq
                or reference_points.shape[-1] != 2
                or reference_points.shape[2] not in (1, self.num_levels)):
            raise ValueError(f'reference_points must be (B, {lq}, {self.num_levels} or 1, 2), '
                             f'got {tuple(reference_points.shape)}')
        value = self.value_proj(feat)
        if padding_mask is not None:
            value = value.masked_fill(padding_mask[..., None], 0.)
        value = value.view(b, lin, self.num_heads, self.value_dims // self.num_heads)
        offsets = self.sampling_offsets(query).view(
            b, lq, self.num_heads, self.num_levels, self.num_points, 2)
        weights = self.attention_weights(query).view(
            b, lq, self.num_heads, self.num_levels * self.num_points)
        weights = F.softmax(weights, -1).view(
            b, lq, self.num_heads, self.num_levels, self.num_points)
        # divided by the (possibly symbolic) ints: a tensor made of the sizes would be frozen
        # at the traced input size by torch.export
        offsets = torch.stack([torch.stack([offsets[:, :, :, i, :, 0] / w,
                                            offsets[:, :, :, i, :, 1] / h], -1)
                               for i, (h, w) in enumerate(shapes)], 3)
        locations = reference_points[:, :, None, :, None, :] + offsets
        out = ms_deform_attn_core(value, shapes, locations.to(value.dtype),
                                  weights.to(value.dtype), self.im2col_step)
        return self.output_proj(out)
