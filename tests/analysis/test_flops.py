"""FLOP hand counts of EVA-02 blocks (analysis/flops.py) against torch's FlopCounterMode on
real tiny models: matmul FLOPs exactly, and the element-wise work (sub-LN, RoPE, SwiGLU
gate) exactly per module of the counter's tree."""
import pytest
import torch

from projects.eva.analysis.flops import (ELEMENTWISE_COST, count_elementwise_flops,
                                         count_flops, vit_flops, vit_flops_breakdown)
from projects.eva.models.eva_vit import ARCH_ZOO, EVAViT

# tiny versions of the three EVA-02 block forms (head dim 16: RoPE needs a multiple of 4)
EVA02_TINY = {
    'fused (Ti/S)': dict(embed_dims=48, num_layers=2, num_heads=3, feedforward_channels=128,
                         mlp_type='swiglu_fused', rope=True),
    'naive + sub-LN (B/L)': dict(embed_dims=48, num_layers=2, num_heads=3,
                                 feedforward_channels=128, mlp_type='swiglu', sub_ln=True,
                                 rope=True),
    'CLIP tower (+ inner_attn_ln)': dict(embed_dims=48, num_layers=2, num_heads=3,
                                         feedforward_channels=128, mlp_type='swiglu',
                                         sub_ln=True, rope=True, inner_attn_ln=True),
}


@pytest.mark.parametrize('name', sorted(EVA02_TINY))
def test_eva02_matmul_flops_match_torch_counter(name):
    arch = EVA02_TINY[name]
    model = EVAViT(arch, img_size=56, patch_size=14).eval()
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        total, by_op = count_flops(model, (x, ))
    assert total == 2 * vit_flops(arch, 56, 14)
    parts = vit_flops_breakdown(arch, 56, 14)
    assert by_op['aten.convolution'] == 2 * parts['patch_embed']
    assert any('flash_attention' in k for k in by_op)
    # the SwiGLU MLP is 3 N D F (two input matrices or one fused 2F-wide), not GELU's 2 N D F
    n, d, f = 17, 48, 128
    assert parts['mlp'] == arch['num_layers'] * 2 * 3 * n * d * f


@pytest.mark.parametrize('name', sorted(EVA02_TINY))
def test_eva02_elementwise_flops_match_counter_per_module(name):
    """Every block: norms (sub-LN over the hidden width), SwiGLU activation + gate, RoPE on
    the q/k patch tokens (not cls), residual adds: the hand count per block equals what the
    block's modules actually ran; the final norm too."""
    arch = EVA02_TINY[name]
    model = EVAViT(arch, img_size=56, patch_size=14).eval()
    batch = 2
    x = torch.randn(batch, 3, 56, 56)
    with torch.no_grad():
        _, by_module = count_elementwise_flops(model, (x, ))
    parts = vit_flops_breakdown(arch, 56, 14)
    depth = arch['num_layers']
    per_block = {k: batch * parts[k] // depth for k in ('mlp_act', 'rope')}
    for i in range(depth):
        blk = f'EVAViT.blocks.{i}'
        mlp = by_module[f'{blk}.mlp']
        assert mlp['aten.silu'] + mlp['aten.mul'] == per_block['mlp_act']
        attn = by_module[f'{blk}.attn']
        rope = attn['aten.mul'] + attn['aten.add'] + attn['aten.neg']
        assert rope == per_block['rope']
        norms = sum(by_module[m].get('aten.native_layer_norm', 0)
                    for m in (f'{blk}.norm1', f'{blk}.norm2', f'{blk}.mlp', f'{blk}.attn'))
        n, d, f = 17, 48, 128
        assert norms == batch * ELEMENTWISE_COST['layer_norm'] * (
            2 * n * d + n * f * arch.get('sub_ln', False)
            + n * d * arch.get('inner_attn_ln', False))
        residual = by_module[blk]['aten.add'] - attn['aten.add']
        assert residual == batch * 2 * n * d
    final = by_module['EVAViT.norm']['aten.native_layer_norm']
    blocks = sum(by_module[f'EVAViT.blocks.{i}'].get('aten.native_layer_norm', 0)
                 for i in range(depth))
    assert blocks + final == batch * parts['layer_norm']


def test_eva01_gelu_count_unchanged_and_no_rope(tiny_arch):
    parts = vit_flops_breakdown(tiny_arch, 56, 14)
    assert parts['rope'] == 0
    n, d, f = 17, 48, 131
    assert parts['mlp'] == 4 * 2 * 2 * n * d * f
    model = EVAViT(tiny_arch, img_size=56, patch_size=14).eval()
    with torch.no_grad():
        _, by_module = count_elementwise_flops(model, (torch.randn(1, 3, 56, 56), ))
    assert by_module['EVAViT.blocks.0.mlp']['aten.gelu'] == parts['mlp_act'] // 4
    assert 'aten.mul' not in by_module['EVAViT.blocks.0.attn']


@pytest.mark.parametrize('arch', ['eva02-tiny', 'eva02-base'])
def test_eva02_presets_on_meta(arch):
    """Full-size presets at 224 on the meta device: the counter equals the hand count."""
    with torch.device('meta'):
        model = EVAViT(arch, img_size=224, patch_size=14)
        x = torch.randn(1, 3, 224, 224)
    total, _ = count_flops(model, (x, ))
    assert total == vit_flops(ARCH_ZOO[arch], 224, 14)


def test_unknown_mlp_type_is_an_error(tiny_arch):
    with pytest.raises(ValueError, match='mlp_type'):
        vit_flops(dict(tiny_arch, mlp_type='relu'), 56, 14)
