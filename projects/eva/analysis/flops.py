"""FLOP counting. ``torch.utils.flop_counter`` works on the ``meta`` device (so ViT-g costs
nothing to count) and counts attention and backward; mmengine's jit-trace counter (fvcore
rules, 1 FLOP per multiply-add) is offered too, with attention added. Both are checked
against :func:`vit_flops`, the hand count."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn


def vit_flops(arch: dict, img_size: Union[int, Sequence[int]] = 224, patch_size: int = 14,
              with_cls_token: bool = True, num_frames: int = 1, in_channels: int = 3) -> int:
    """Hand count of one image's forward FLOPs (2 per multiply-add) of a plain EVA ViT:
    patch conv, then per block qkv (3 D^2), proj (D^2), fc1 + fc2 (2 D F) per token and the
    two attention products (2 N^2 D). Norms, GELU and adds are not counted (< 1%)."""
    h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
    patches = (h // patch_size) * (w // patch_size) * num_frames
    n = patches + int(with_cls_token)
    d, f, depth = arch['embed_dims'], arch['feedforward_channels'], arch['num_layers']
    macs = patches * d * in_channels * patch_size ** 2
    macs += depth * (n * (4 * d * d + 2 * d * f) + 2 * n * n * d)
    return 2 * macs


def count_flops(model: nn.Module, inputs: Tuple, backward: bool = False,
                forward_fn=None) -> Tuple[int, dict]:
    """Total FLOPs (2 per multiply-add) and the per-operator counts of ``forward_fn(*inputs)``
    (default ``model(*inputs)``), optionally with the backward of the summed outputs. Works on
    real and ``meta`` tensors."""
    from torch.utils.flop_counter import FlopCounterMode
    fn = forward_fn or model
    counter = FlopCounterMode(display=False, custom_mapping=_cpu_sdpa_formulas())
    with counter:
        out = fn(*inputs)
        if backward:
            leaves = [t for t in _tensors(out) if t.requires_grad]
            sum(t.float().sum() for t in leaves).backward()
    by_op = {str(k): v for k, v in counter.get_flop_counts().get('Global', {}).items()}
    return counter.get_total_flops(), by_op


def _cpu_sdpa_formulas() -> dict:
    """torch's counter knows the CUDA attention kernels only; CPU runs dispatch to
    ``_scaled_dot_product_flash_attention_for_cpu`` (and its backward), which it would skip."""
    from torch.utils import flop_counter as fc
    aten = torch.ops.aten
    table = {}
    if hasattr(aten, '_scaled_dot_product_flash_attention_for_cpu'):
        def fwd(q, k, v, *args, out_shape=None, **kwargs):
            return fc.sdpa_flop_count(q, k, v)

        def bwd(grad_out, q, k, v, *args, out_shape=None, **kwargs):
            return fc.sdpa_backward_flop_count(grad_out, q, k, v)

        table[aten._scaled_dot_product_flash_attention_for_cpu] = fwd
        table[aten._scaled_dot_product_flash_attention_for_cpu_backward] = bwd
    return table


def _tensors(out):
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, dict):
        for v in out.values():
            yield from _tensors(v)
    elif isinstance(out, (list, tuple)):
        for v in out:
            yield from _tensors(v)


def _sdpa_flop_jit(inputs, outputs):
    """fvcore-style handle: q @ k^T and attn @ v, 1 FLOP per multiply-add."""
    from mmengine.analysis.jit_handles import get_shape
    q, k, v = (get_shape(i) for i in inputs[:3])
    batch = 1
    for s in q[:-2]:
        batch *= s
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def count_flops_mmengine(model: nn.Module, inputs: Tuple) -> Tuple[int, dict]:
    """mmengine's ``FlopAnalyzer`` (fvcore rules: 1 FLOP per multiply-add, norms counted)
    with ``scaled_dot_product_attention`` added, which it does not know. Needs real tensors.
    Returned as 2 x multiply-adds for comparison with :func:`count_flops`."""
    from mmengine.analysis import FlopAnalyzer
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle(**{'aten::scaled_dot_product_attention': _sdpa_flop_jit})
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = dict(analyzer.by_operator())
    return 2 * analyzer.total(), {k: 2 * v for k, v in by_op.items()}
