"""FLOP counting. ``torch.utils.flop_counter`` works on the ``meta`` device (so ViT-g costs
nothing to count) and counts attention and backward; mmengine's jit-trace counter (fvcore
rules, 1 FLOP per multiply-add) is offered too, with attention added. Both are checked
against :func:`vit_flops`, the hand count, for EVA-01 (GELU) and EVA-02 blocks (SwiGLU
fused / naive, sub-LN, RoPE, ``inner_attn_ln``).

Matmul FLOPs (convolution, linears, the two attention products) are what torch's counter
and the papers report, 2 per multiply-add. The element-wise work EVA-02 adds (sub-LN, RoPE,
the SwiGLU gate) costs no matmul FLOPs; :func:`vit_flops_breakdown` counts it separately
with the per-element costs of :data:`ELEMENTWISE_COST`, which
:func:`count_elementwise_flops` applies to the operators actually run.
"""
import math
from typing import Dict, Sequence, Tuple, Union

import torch
import torch.nn as nn

# FLOPs per output element of the element-wise operators (LayerNorm: fvcore's 5 for an
# affine norm: mean, variance, normalise, scale, shift; an activation counts 1).
ELEMENTWISE_COST = dict(add=1, mul=1, neg=1, silu=1, gelu=1, layer_norm=5)
MATMUL_KEYS = ('patch_embed', 'attn_proj', 'attn_sdpa', 'mlp')


def vit_flops_breakdown(arch: dict, img_size: Union[int, Sequence[int]] = 224,
                        patch_size: int = 14, with_cls_token: bool = True,
                        num_frames: int = 1, in_channels: int = 3,
                        final_norm: bool = True) -> Dict[str, int]:
    """Hand count of one image's forward FLOPs of an ``EVAViT`` with global attention, by
    part. ``arch``: an ``EVAViT`` arch dict (``mlp_type``/``sub_ln``/``rope``/
    ``inner_attn_ln`` optional, default EVA-01). P patches, N = P (+1 cls) tokens, width D,
    MLP hidden F (EVA-02: ``4 * 2/3 * D``), per block:

    * matmuls (2 per multiply-add): ``attn_proj`` q, k, v and proj 4 N D^2 (fused ``qkv``
      or sub-LN's split ``q/k/v_proj`` alike); ``attn_sdpa`` q k^T and attn v 2 N^2 D;
      ``mlp`` GELU fc1 + fc2 2 N D F, SwiGLU (``w12`` + ``w3`` fused, ``w1`` + ``w2`` + ``w3``
      naive) 3 N D F; plus the patch convolution P D C p^2 once.
    * element-wise (:data:`ELEMENTWISE_COST`): ``layer_norm`` norm1 + norm2 (N D each),
      sub-LN ``ffn_ln`` (N F: it normalises the hidden layer), ``inner_attn_ln`` (N D), the
      final norm (N D, once); ``mlp_act`` GELU N F, SwiGLU SiLU + gate product 2 N F;
      ``rope`` on q and k of the patch tokens only: x cos + rot(x) sin with the sign flip of
      half of the pairs, 3.5 per element, so 7 P D; ``residual`` 2 N D, plus the position
      table add (N D) once.

    The RoPE tables (cos / sin of a P x head_dim grid, once per forward, batch-independent)
    are not included. ``matmul`` = the sum of the matmul parts = :func:`vit_flops`.
    """
    h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
    patches = (h // patch_size) * (w // patch_size) * num_frames
    n = patches + int(with_cls_token)
    d, f, depth = arch['embed_dims'], arch['feedforward_channels'], arch['num_layers']
    mlp_type = arch.get('mlp_type', 'gelu')
    if mlp_type not in ('gelu', 'swiglu', 'swiglu_fused'):
        raise ValueError(f'unknown mlp_type {mlp_type!r} in arch {arch}')
    glu = mlp_type != 'gelu'
    ln = ELEMENTWISE_COST['layer_norm']
    norm_elems = 2 * n * d + (n * f if arch.get('sub_ln', False) else 0) + \
        (n * d if arch.get('inner_attn_ln', False) else 0)
    parts = dict(
        patch_embed=2 * patches * d * in_channels * patch_size ** 2,
        attn_proj=depth * 2 * 4 * n * d * d,
        attn_sdpa=depth * 2 * 2 * n * n * d,
        mlp=depth * 2 * (3 if glu else 2) * n * d * f,
        layer_norm=ln * (depth * norm_elems + (n * d if final_norm else 0)),
        mlp_act=depth * (2 if glu else 1) * n * f,
        rope=depth * 7 * patches * d if arch.get('rope', False) else 0,
        residual=depth * 2 * n * d + n * d,
    )
    parts['matmul'] = sum(parts[k] for k in MATMUL_KEYS)
    parts['elementwise'] = sum(v for k, v in parts.items()
                               if k not in MATMUL_KEYS and k != 'matmul')
    return parts


def vit_flops(arch: dict, img_size: Union[int, Sequence[int]] = 224, patch_size: int = 14,
              with_cls_token: bool = True, num_frames: int = 1, in_channels: int = 3) -> int:
    """Hand count of one image's forward matmul FLOPs (2 per multiply-add) of an ``EVAViT``:
    patch conv, then per block q/k/v + proj (4 D^2), the MLP (GELU 2 D F, SwiGLU 3 D F) per
    token and the two attention products (2 N^2 D); what torch's counter counts. Norms,
    activations, RoPE and adds: :func:`vit_flops_breakdown`."""
    return vit_flops_breakdown(arch, img_size, patch_size, with_cls_token, num_frames,
                               in_channels)['matmul']


def count_elementwise_flops(model: nn.Module, inputs: Tuple,
                            forward_fn=None) -> Tuple[int, Dict[str, int]]:
    """Element-wise FLOPs of ``forward_fn(*inputs)`` (default ``model(*inputs)``) by module
    (``{module path: {op: FLOPs}}``, torch's counter's module tree), with the per-element
    costs of :data:`ELEMENTWISE_COST`; returns (total, by_module). Works on ``meta``."""
    from torch.utils.flop_counter import FlopCounterMode
    aten = torch.ops.aten

    def rule(cost):
        def count(*args, out_shape=None, **kwargs):
            if isinstance(out_shape, (tuple, list)) and not isinstance(out_shape, torch.Size):
                out_shape = out_shape[0]  # native_layer_norm: (out, mean, rstd)
            return cost * math.prod(out_shape)
        return count

    ops = dict(add=aten.add, mul=aten.mul, neg=aten.neg, silu=aten.silu, gelu=aten.gelu,
               layer_norm=aten.native_layer_norm)
    mapping = {op: rule(ELEMENTWISE_COST[name]) for name, op in ops.items()}
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    keep = {str(op) for op in mapping}
    with counter:
        (forward_fn or model)(*inputs)
    by_module = {mod: {str(k): v for k, v in counts.items() if str(k) in keep}
                 for mod, counts in counter.get_flop_counts().items()}
    return sum(by_module.get('Global', {}).values()), by_module


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
