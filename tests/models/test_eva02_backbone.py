"""EVA-02 options of EVAViT: presets and exact parameter counts, 2-D RoPE (official formula,
run-time tables, per window), SwiGLU / sub-LN / inner_attn_ln math, init, and the EVA-01
features (window attention, checkpointing, freezing, layer decay) with these options."""
import math

import pytest
import torch
import torch.nn.functional as F

from projects.eva.models import EVAViT
from projects.eva.models.eva_vit import apply_rope, rope_2d


def count(module):
    return sum(p.numel() for p in module.parameters())


def tiny02(**kw):
    """EVA-02 B/L layout (naive SwiGLU + sub-LN), tiny: head dim 16."""
    return dict(dict(embed_dims=48, num_layers=4, num_heads=3, feedforward_channels=64,
                     mlp_type='swiglu', sub_ln=True, rope=True), **kw)


def build(arch=None, **kw):
    torch.manual_seed(0)
    m = EVAViT(arch or tiny02(), img_size=56, patch_size=14, **kw)
    m.init_weights()
    return m.eval()


# ---------------------------------------------------------------- presets, exact sizes
# eva02_reference.md 1.3: encoder @224 = patch embed + cls + pos (257) + blocks; MIM adds the
# mask token, the final norm and lm_head (D -> 1024); IN-1K classifiers add fc_norm + head
ENCODER = {'eva02-tiny': 5_501_760, 'eva02-small': 21_620_352, 'eva02-base': 85_757_184,
           'eva02-large': 303_266_752}
BLOCK = {'eva02-tiny': 444_928, 'eva02-small': 1_774_592, 'eva02-base': 7_092_224,
         'eva02-large': 12_599_976}
MIM = {'eva02-tiny': 5_699_968, 'eva02-small': 22_015_744, 'eva02-base': 86_546_944,
       'eva02-large': 304_319_424}
IN1K = {'eva02-tiny': (336, 5_756_584), 'eva02-small': (336, 22_129_000),
        'eva02-base': (448, 87_117_544), 'eva02-large': (448, 305_080_232)}


@pytest.mark.parametrize('arch', list(ENCODER))
def test_preset_parameter_counts_on_meta(arch):
    from mmpretrain.registry import MODELS
    import projects.eva.classification  # noqa: F401  (EVAClsHead)
    import projects.eva.pretrain  # noqa: F401  (EVAMIMHead)
    with torch.device('meta'):
        enc = EVAViT(arch, img_size=224, patch_size=14, final_norm=False)
        mim = EVAViT(arch, img_size=224, patch_size=14, final_norm=True, with_mask_token=True)
        lm_head = MODELS.build(dict(type='EVAMIMHead', in_channels=enc.embed_dims,
                                    out_channels=1024))
        size, _ = IN1K[arch]
        cls = MODELS.build(dict(
            type='ImageClassifier',
            backbone=dict(type='EVAViT', arch=arch, img_size=size, patch_size=14,
                          out_type='avg_featmap', final_norm=False),
            head=dict(type='EVAClsHead', num_classes=1000, in_channels=enc.embed_dims)))
    assert count(enc.blocks[0]) == BLOCK[arch]
    assert count(enc) == ENCODER[arch]
    assert count(mim) + count(lm_head) == MIM[arch]
    assert count(cls) == IN1K[arch][1]
    # README: 6M / 22M / 86M / 304M
    assert round(MIM[arch] / 1e6) == {'eva02-tiny': 6, 'eva02-small': 22, 'eva02-base': 87,
                                      'eva02-large': 304}[arch]


def test_preset_layouts_and_dict_form():
    with torch.device('meta'):
        ti, b = EVAViT('eva02-tiny'), EVAViT('eva02-base')
        same = EVAViT(dict(embed_dims=768, num_layers=12, num_heads=12,
                           feedforward_channels=2048, mlp_type='swiglu', sub_ln=True,
                           rope=True))
    assert tuple(ti.blocks[0].mlp.w12.weight.shape) == (1024, 192)  # fused, 2H x D
    assert hasattr(ti.blocks[0].attn, 'qkv') and ti.blocks[0].mlp.__class__.__name__ == \
        'SwiGLUFused'
    assert tuple(b.blocks[0].mlp.ffn_ln.weight.shape) == (2048, )
    assert not hasattr(b.blocks[0].attn, 'qkv') and b.blocks[0].attn.k_proj.bias is None
    assert [k for k, _ in same.named_parameters()] == [k for k, _ in b.named_parameters()]
    assert EVAViT('eva02-large').blocks[0].mlp.w1.out_features == int(1024 * 4 * 2 / 3) == 2730
    with pytest.raises(KeyError, match='unknown keys'):
        EVAViT(tiny02(swiglu=True))
    with pytest.raises(ValueError, match='mlp_type'):
        EVAViT(tiny02(mlp_type='geglu'))
    with pytest.raises(ValueError, match='fused SwiGLU'):
        EVAViT(tiny02(mlp_type='swiglu_fused'))
    with pytest.raises(ValueError, match='video'):
        EVAViT(tiny02(), img_size=56, num_frames=2)
    with pytest.raises(ValueError, match='use_rel_pos=False'):
        EVAViT(tiny02(), img_size=56, with_cls_token=False, use_rel_pos=True)


# ---------------------------------------------------------------- RoPE
def official_rope(head_dim, pt_seq_len, ft_seq_len, theta=10000.):
    """asuka/rope.py ``VisionRotaryEmbeddingFast`` (einops spelled out with torch)."""
    dim = head_dim // 2
    freqs = 1. / (theta ** (torch.arange(0, dim, 2)[:(dim // 2)].float() / dim))
    t = torch.arange(ft_seq_len) / ft_seq_len * pt_seq_len
    freqs = torch.einsum('..., f -> ... f', t, freqs)
    freqs = torch.stack([freqs, freqs], dim=-1).flatten(-2)  # '... n -> ... (n r)', r=2
    n = ft_seq_len
    freqs = torch.cat([freqs[:, None, :].expand(n, n, dim),  # broadcat, dim=-1
                       freqs[None, :, :].expand(n, n, dim)], dim=-1)
    return freqs.cos().view(-1, head_dim), freqs.sin().view(-1, head_dim)


def official_rotate_half(x):
    x = x.unflatten(-1, (-1, 2))
    x1, x2 = x.unbind(-1)
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


@pytest.mark.parametrize('head_dim,ft', [(64, 16), (64, 24), (64, 32), (16, 4), (88, 14)])
def test_rope_tables_are_the_official_formula(head_dim, ft):
    cos, sin = rope_2d((ft, ft), head_dim, (16, 16))
    ref_cos, ref_sin = official_rope(head_dim, 16, ft)
    torch.testing.assert_close(cos, ref_cos, rtol=0, atol=1e-6)
    torch.testing.assert_close(sin, ref_sin, rtol=0, atol=1e-6)
    x = torch.randn(2, 3, 1 + ft * ft, head_dim)
    got = apply_rope(x, (cos, sin))
    torch.testing.assert_close(got[:, :, :1], x[:, :, :1], rtol=0, atol=0)  # cls untouched
    want = x[:, :, 1:] * ref_cos + official_rotate_half(x[:, :, 1:]) * ref_sin
    torch.testing.assert_close(got[:, :, 1:], want)


def test_rope_is_a_rotation_with_relative_logits():
    """On the reference grid (ft = pt) q.k after RoPE depends only on the offset."""
    cos, sin = rope_2d((6, 6), 16, (6, 6))
    q, k = torch.randn(16), torch.randn(16)
    rq = apply_rope(q.expand(1, 36, 16), (cos, sin))[0].view(6, 6, 16)
    rk = apply_rope(k.expand(1, 36, 16), (cos, sin))[0].view(6, 6, 16)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm().expand(6, 6))
    logit = lambda a, b: (rq[a] * rk[b]).sum()  # noqa: E731
    torch.testing.assert_close(logit((1, 2), (3, 0)), logit((3, 3), (5, 1)))
    torch.testing.assert_close(logit((0, 0), (4, 5)), logit((1, 0), (5, 5)))
    assert not torch.allclose(logit((0, 0), (4, 5)), logit((0, 0), (5, 4)))


def test_non_square_grid_scales_each_axis():
    cos, sin = rope_2d((2, 4), 8, (16, 16))
    freqs = 1. / 10000 ** (torch.arange(0, 4, 2).float() / 4)  # d/2 = 4 -> 2 frequencies
    rows = (torch.arange(2) / 2 * 16)[:, None] * freqs
    cols = (torch.arange(4) / 4 * 16)[:, None] * freqs
    r, c = 1, 3
    angle = torch.cat([rows[r].repeat_interleave(2), cols[c].repeat_interleave(2)])
    torch.testing.assert_close(cos[r * 4 + c], angle.cos())
    torch.testing.assert_close(sin[r * 4 + c], angle.sin())


def test_rope_never_in_state_dict_and_stored_tables_dropped():
    m = build()
    assert not any('rope' in k or 'freqs' in k for k in m.state_dict())
    assert not any('rope' in n for n, _ in m.named_buffers())
    sd = dict(m.state_dict())
    sd['rope.freqs_cos'] = torch.zeros(16, 16, 16)  # official MIM files: (16, 16, hd) tables
    sd['blocks.0.attn.rope.freqs_sin'] = torch.zeros(16, 16)
    m.load_state_dict(sd, strict=True)  # dropped by the load hook, not an unexpected key


def _explicit_block(blk, x, rope, inner_ln=False):
    """EVA-02 block from asuka/modeling_finetune.py, with the block's own weights."""
    a = blk.attn
    b, n, c = x.shape
    heads, hd = a.num_heads, c // a.num_heads
    y = blk.norm1(x)
    q = (y @ a.q_proj.weight.t() + a.q_bias).view(b, n, heads, hd).transpose(1, 2)
    k = (y @ a.k_proj.weight.t()).view(b, n, heads, hd).transpose(1, 2)
    v = (y @ a.v_proj.weight.t() + a.v_bias).view(b, n, heads, hd).transpose(1, 2)
    cos, sin = rope
    q = torch.cat([q[:, :, :1], q[:, :, 1:] * cos + official_rotate_half(q[:, :, 1:]) * sin], 2)
    k = torch.cat([k[:, :, :1], k[:, :, 1:] * cos + official_rotate_half(k[:, :, 1:]) * sin], 2)
    att = ((q * hd ** -0.5) @ k.transpose(-2, -1)).softmax(-1) @ v
    att = att.transpose(1, 2).reshape(b, n, c)
    if inner_ln:
        att = a.inner_attn_ln(att)
    x = x + a.proj(att)
    y = blk.norm2(x)
    m = blk.mlp
    h = F.silu(y @ m.w1.weight.t() + m.w1.bias) * (y @ m.w2.weight.t() + m.w2.bias)
    h = F.layer_norm(h, h.shape[-1:], m.ffn_ln.weight, m.ffn_ln.bias, 1e-6)
    return x + h @ m.w3.weight.t() + m.w3.bias


@pytest.mark.parametrize('inner_ln', [False, True])
def test_block_math_matches_the_official_block(inner_ln):
    m = build(tiny02(inner_attn_ln=inner_ln))
    with torch.no_grad():
        for n, p in m.named_parameters():  # biases / norms off their init values
            if p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.1)
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        tokens, grid = m.embed(x)
        rope = official_rope(16, 16, 4)
        ref = tokens
        for blk in m.blocks:
            ref = _explicit_block(blk, ref, rope, inner_ln)
        torch.testing.assert_close(m.forward_blocks(tokens, grid), ref)
    assert (m.blocks[0].attn.inner_attn_ln is not None) == inner_ln


def test_fused_swiglu_gate_is_the_first_half():
    m = build(tiny02(mlp_type='swiglu_fused', sub_ln=False))
    mlp = m.blocks[0].mlp
    x = torch.randn(5, 48)
    w1, w2 = mlp.w12.weight[:64], mlp.w12.weight[64:]
    b1, b2 = mlp.w12.bias[:64], mlp.w12.bias[64:]
    want = mlp.w3(F.silu(x @ w1.t() + b1) * (x @ w2.t() + b2))
    torch.testing.assert_close(mlp(x), want)
    assert hasattr(m.blocks[0].attn, 'qkv') and not hasattr(m.blocks[0].attn, 'q_proj')


def test_rope_runs_at_other_resolutions_and_changes_with_the_grid():
    m = build()
    with torch.no_grad():
        out = m(torch.randn(1, 3, 84, 70))[0]  # 6x5: pos resized, RoPE for 6x5 (scaled to 16)
    assert out.shape == (1, 31, 48)
    tables = m.rope_tables((6, 5))
    torch.testing.assert_close(tables[0][0], rope_2d((6, 5), 16, (16, 16))[0])
    # RoPE is wired in: changing the reference grid changes the output
    other = EVAViT(tiny02(), img_size=56, rope_ref_size=8)
    other.load_state_dict(m.state_dict())
    x = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        assert not torch.allclose(other.eval()(x)[0], m(x)[0], atol=1e-4)


def test_window_rope_is_per_window_and_equals_global_when_one_window_covers_the_map():
    kw = dict(with_cls_token=False, out_type='featmap', final_norm=False)
    glob = build(**kw)
    win = EVAViT(tiny02(), img_size=56, window_size=4, global_block_indices=(1, ), **kw).eval()
    win.load_state_dict(glob.state_dict())
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        torch.testing.assert_close(win(x)[0], glob(x)[0])
        # window 2: each 2x2 window gets the RoPE of a 2x2 grid scaled to 16 (official det)
        small = EVAViT(tiny02(), img_size=56, window_size=2, **kw).eval()
        small.load_state_dict(glob.state_dict())
        tables = small.rope_tables((4, 4))
        assert tables[2][0].shape == (4, 16)
        torch.testing.assert_close(tables[2][0], rope_2d((2, 2), 16, (16, 16))[0])
        # reference: the block run on each window as a separate 2x2 "image"
        tokens, grid = small.embed(x)
        blk = small.blocks[0]
        want = torch.empty_like(tokens).view(2, 4, 4, 48)
        t = tokens.view(2, 4, 4, 48)
        for i in (0, 2):
            for j in (0, 2):
                w = t[:, i:i + 2, j:j + 2].reshape(2, 4, 48)
                y = blk.attn(blk.norm1(w), (2, 2), tables[2])
                w = w + y
                w = w + blk.mlp(blk.norm2(w))
                want[:, i:i + 2, j:j + 2] = w.view(2, 2, 2, 48)
        torch.testing.assert_close(small.forward_blocks(tokens, grid, 0, 1), want.view(2, 16, 48))


def test_with_cp_fp32_attention_freezing_and_layer_depth_with_eva02_options():
    a = build(drop_path_rate=0.)
    b = EVAViT(tiny02(), img_size=56, with_cp=True)
    b.load_state_dict(a.state_dict())
    a.train(), b.train()
    x = torch.randn(2, 3, 56, 56)
    ya, yb = a(x)[0], b(x)[0]
    torch.testing.assert_close(ya, yb)
    ya.square().mean().backward()
    yb.square().mean().backward()
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=n)
    assert a.blocks[0].mlp.ffn_ln.weight.grad.abs().sum() > 0
    f = EVAViT(tiny02(), img_size=56, frozen_stages=2)
    assert not f.blocks[1].attn.q_proj.weight.requires_grad
    assert not f.blocks[1].mlp.ffn_ln.weight.requires_grad
    assert f.blocks[2].attn.q_proj.weight.requires_grad
    assert f.get_layer_depth('backbone.blocks.3.mlp.w1.weight', 'backbone.') == (4, 6)
    assert f.get_layer_depth('backbone.blocks.0.attn.q_bias', 'backbone.') == (1, 6)
    low = EVAViT(tiny02(), img_size=56, fp32_attn_and_norm=True)
    low.load_state_dict(a.state_dict())
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = low.eval()(x)[0]
    assert out.dtype == torch.bfloat16
    with torch.no_grad():
        torch.testing.assert_close(out.float(), a.eval()(x)[0], rtol=0.05, atol=0.15)


def test_eva02_init():
    torch.manual_seed(0)
    m = EVAViT(tiny02(), img_size=56)
    assert m.init_type == 'eva02' and m.init_std == 0.02
    m.init_weights()
    scale = math.sqrt(math.log(2 * 4))  # sub-LN rescale, 1.7827 for B, 1.9675 for L
    blk = m.blocks[1]
    # xavier-normal std sqrt(2 / (fan_in + fan_out))
    xav = math.sqrt(2 / (48 + 48))
    assert abs(blk.attn.q_proj.weight.std().item() - xav) < 0.1 * xav  # not rescaled
    assert abs(blk.attn.v_proj.weight.std().item() - scale * xav) < 0.1 * scale * xav
    assert abs(blk.attn.proj.weight.std().item() - scale * xav) < 0.1 * scale * xav
    xav_mlp = math.sqrt(2 / (48 + 64))
    for lin in (blk.mlp.w1, blk.mlp.w2, blk.mlp.w3):
        assert abs(lin.weight.std().item() - scale * xav_mlp) < 0.1 * scale * xav_mlp
        assert not lin.bias.any()
    assert torch.all(blk.mlp.ffn_ln.weight == 1) and not blk.attn.q_bias.any()
    assert m.pos_embed.abs().max() <= 0.02 + 1e-7  # trunc-normal at +-1 sigma
    k = m.patch_embed.proj.weight
    bound = math.sqrt(6 / (k.shape[0] + k[0].numel()))  # xavier-uniform on the (D, 3p^2) view
    assert k.abs().max() <= bound and k.abs().max() > 0.9 * bound
    assert EVAViT('tiny', img_size=56).init_type == 'eva01'
    fused = EVAViT(tiny02(mlp_type='swiglu_fused', sub_ln=False), img_size=56)
    fused.init_weights()  # no sub-LN: no rescale
    xav12 = math.sqrt(2 / (48 + 128))
    assert abs(fused.blocks[0].mlp.w12.weight.std().item() - xav12) < 0.1 * xav12
