"""EVAViT: exact parameter counts, init, position-embedding resizing, outputs, checkpointing."""
import math

import pytest
import torch
import torch.nn.functional as F

from projects.eva.models import EVAViT
from projects.eva.models.vit_adapt import resize_pos_embed


def count(module, trainable_only=False):
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def test_giant_parameter_count_on_meta():
    with torch.device('meta'):
        model = EVAViT(arch='giant', patch_size=14, out_type='raw', final_norm=True)
    assert count(model) == 1_011_146_112
    # the formula in the spec: 40 blocks of 4D^2 + 2DF + 8D + F plus embeddings and final LN
    d, f = 1408, 6144
    assert count(model) == 40 * (4 * d * d + 2 * d * f + 8 * d + f) + \
        (3 * 14 * 14 * d + d) + d + 257 * d + 2 * d


def test_presets_and_dict_arch(tiny_arch):
    with torch.device('meta'):
        assert EVAViT('large').embed_dims == 1024
        assert len(EVAViT('base').blocks) == 12
        m = EVAViT(tiny_arch)
    assert m.blocks[0].mlp.fc1.out_features == 131
    with pytest.raises(KeyError, match='unknown EVAViT arch'):
        EVAViT('huge')
    with pytest.raises(KeyError, match='lacks'):
        EVAViT(dict(embed_dims=8))


def test_eva_init_truncation_and_rescale(tiny_arch):
    torch.manual_seed(0)
    m = EVAViT(tiny_arch, img_size=56, init_std=0.015)
    m.init_weights()
    std = 0.015
    assert m.blocks[0].attn.qkv.weight.abs().max() <= std + 1e-7
    assert m.pos_embed.abs().max() <= std + 1e-7
    for layer_id, blk in enumerate(m.blocks, start=1):
        bound = std / math.sqrt(2 * layer_id) + 1e-7
        assert blk.attn.proj.weight.abs().max() <= bound
        assert blk.mlp.fc2.weight.abs().max() <= bound
        # the un-rescaled fc1 uses (almost) the whole +-std range
        assert blk.mlp.fc1.weight.abs().max() > 0.9 * std
        assert torch.all(blk.attn.q_bias == 0) and torch.all(blk.attn.v_bias == 0)


def test_k_bias_is_zero_and_not_a_parameter(tiny_arch):
    m = EVAViT(tiny_arch, img_size=28)
    names = [n for n, _ in m.named_parameters()]
    assert 'blocks.0.attn.q_bias' in names and 'blocks.0.attn.v_bias' in names
    assert not any('k_bias' in n for n in names)
    assert not any('k_bias' in k for k in m.state_dict())


@pytest.mark.parametrize('out_type,shape', [
    ('raw', (2, 1 + 16, 48)), ('cls_token', (2, 48)), ('featmap', (2, 48, 4, 4)),
    ('avg_featmap', (2, 48))])
def test_out_types(tiny_arch, out_type, shape):
    m = EVAViT(tiny_arch, img_size=56, out_type=out_type, final_norm=out_type != 'avg_featmap',
               out_indices=(1, -1))
    m.init_weights()
    outs = m(torch.randn(2, 3, 56, 56))
    assert len(outs) == 2 and all(o.shape == shape for o in outs)


def test_avg_featmap_is_fc_norm_of_patch_mean(tiny_arch):
    torch.manual_seed(0)
    raw = EVAViT(tiny_arch, img_size=56, out_type='raw', final_norm=False)
    raw.init_weights()
    avg = EVAViT(tiny_arch, img_size=56, out_type='avg_featmap', final_norm=False)
    avg.load_state_dict(raw.state_dict(), strict=False)
    x = torch.randn(2, 3, 56, 56)
    tokens = raw(x)[0]
    expected = F.layer_norm(tokens[:, 1:].mean(1), (48, ), avg.fc_norm.weight,
                            avg.fc_norm.bias, 1e-6)
    torch.testing.assert_close(avg(x)[0], expected)


def test_pos_embed_resized_on_load(tiny_arch):
    src = EVAViT(tiny_arch, img_size=56)  # 4x4 grid
    src.init_weights()
    dst = EVAViT(tiny_arch, img_size=84)  # 6x6 grid
    missing = dst.load_state_dict(src.state_dict())
    assert not missing.missing_keys and not missing.unexpected_keys
    assert dst.pos_embed.shape == (1, 37, 48)
    grid = src.pos_embed[:, 1:].reshape(1, 4, 4, 48).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(6, 6), mode='bicubic', align_corners=False)
    torch.testing.assert_close(dst.pos_embed[:, 1:], expected.permute(0, 2, 3, 1).reshape(1, 36, 48))
    torch.testing.assert_close(dst.pos_embed[:, :1], src.pos_embed[:, :1])


def test_pos_embed_cls_slot_dropped_without_cls_token(tiny_arch):
    src = EVAViT(tiny_arch, img_size=56)
    src.init_weights()
    det = EVAViT(tiny_arch, img_size=56, with_cls_token=False, out_type='featmap')
    det.load_state_dict({k: v for k, v in src.state_dict().items() if k != 'cls_token'})
    torch.testing.assert_close(det.pos_embed, src.pos_embed[:, 1:])


def test_pos_embed_resized_at_forward(tiny_arch):
    torch.manual_seed(0)
    m = EVAViT(tiny_arch, img_size=56)
    m.init_weights()
    x = torch.randn(1, 3, 84, 70)  # 6x5 grid, not square
    out = m(x)[0]
    assert out.shape == (1, 31, 48)
    ref = EVAViT(tiny_arch, img_size=(84, 70))
    sd = m.state_dict()
    sd['pos_embed'] = resize_pos_embed(m.pos_embed.data, (4, 4), (6, 5), 1)
    ref.load_state_dict(sd)
    torch.testing.assert_close(out, ref(x)[0])


def test_with_cp_same_outputs_and_grads(tiny_arch):
    torch.manual_seed(0)
    a = EVAViT(tiny_arch, img_size=56, drop_path_rate=0.)
    a.init_weights()
    b = EVAViT(tiny_arch, img_size=56, with_cp=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 56, 56)
    ya, yb = a(x)[0], b(x)[0]
    torch.testing.assert_close(ya, yb)
    ya.square().mean().backward()
    yb.square().mean().backward()
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=n)


def test_mask_token_replaces_patches_before_pos_embed(tiny_arch):
    torch.manual_seed(0)
    m = EVAViT(tiny_arch, img_size=56, with_mask_token=True)
    m.init_weights()
    mask = torch.ones(2, 16, dtype=torch.bool)
    x1, x2 = torch.randn(2, 3, 56, 56), torch.randn(2, 3, 56, 56)
    # fully masked: the image no longer matters, positions still do
    torch.testing.assert_close(m(x1, mask)[0], m(x2, mask)[0])
    assert not torch.allclose(m(x1)[0], m(x2)[0])
    with pytest.raises(ValueError, match='mask covers'):
        m(x1, torch.ones(2, 9, dtype=torch.bool))


def test_freezing_and_layer_depth(tiny_arch):
    m = EVAViT(tiny_arch, img_size=56, freeze_patch_embed=True)
    m.train()
    assert not any(p.requires_grad for p in m.patch_embed.parameters())
    assert m.pos_embed.requires_grad and m.blocks[0].attn.qkv.weight.requires_grad
    assert m.get_layer_depth('backbone.pos_embed', 'backbone.') == (0, 6)
    assert m.get_layer_depth('backbone.patch_embed.proj.weight', 'backbone.') == (0, 6)
    assert m.get_layer_depth('backbone.blocks.2.mlp.fc1.weight', 'backbone.') == (3, 6)
    assert m.get_layer_depth('backbone.norm.weight', 'backbone.') == (5, 6)
    assert m.get_layer_depth('head.fc.weight', 'backbone.') == (5, 6)
    f = EVAViT(tiny_arch, img_size=56, frozen_stages=2)
    assert not f.blocks[1].attn.qkv.weight.requires_grad and f.blocks[2].attn.qkv.weight.requires_grad
    assert not f.pos_embed.requires_grad


def test_bad_input_errors(tiny_arch):
    m = EVAViT(tiny_arch, img_size=56)
    with pytest.raises(ValueError, match='not a multiple of the patch size'):
        m(torch.randn(1, 3, 50, 56))
    with pytest.raises(ValueError, match='expected an image batch'):
        m(torch.randn(3, 56, 56))


def test_window_attention_equals_global_when_window_covers_map(tiny_arch):
    torch.manual_seed(0)
    glob = EVAViT(tiny_arch, img_size=56, with_cls_token=False, out_type='featmap',
                  final_norm=False, use_rel_pos=True)
    glob.init_weights()
    win = EVAViT(tiny_arch, img_size=56, with_cls_token=False, out_type='featmap',
                 final_norm=False, use_rel_pos=True, window_size=4, global_block_indices=(1, 3))
    for blk in glob.blocks:  # non-zero rel-pos so the check covers them
        torch.nn.init.normal_(blk.attn.rel_pos_h, std=0.1)
        torch.nn.init.normal_(blk.attn.rel_pos_w, std=0.1)
    win.load_state_dict(glob.state_dict())
    x = torch.randn(2, 3, 56, 56)
    torch.testing.assert_close(win(x)[0], glob(x)[0], rtol=1e-5, atol=1e-5)
    # a smaller window changes the result
    small = EVAViT(tiny_arch, img_size=56, with_cls_token=False, out_type='featmap',
                   final_norm=False, use_rel_pos=True, window_size=2)
    small.load_state_dict(glob.state_dict())
    assert not torch.allclose(small(x)[0], glob(x)[0], atol=1e-4)


# ---------------------------------------------------------------- BEiT rel-pos table + layer scale
def test_beit_relative_position_index_2x2_by_hand(tiny_arch):
    from projects.eva.models.eva_vit import beit_relative_position_index
    # table rows: 9 offsets (dy+1)*3 + (dx+1), then 9 = cls->patch, 10 = patch->cls, 11 = cls->cls;
    # patches in raster order (0,0) (0,1) (1,0) (1,1)
    expected = torch.tensor([[11, 9, 9, 9, 9],
                             [10, 4, 3, 1, 0],
                             [10, 5, 4, 2, 1],
                             [10, 7, 6, 4, 3],
                             [10, 8, 7, 5, 4]])
    assert torch.equal(beit_relative_position_index(2, 2), expected)
    m = EVAViT(tiny_arch, img_size=32, patch_size=16, use_rel_pos_bias=True)
    attn = m.blocks[0].attn
    assert torch.equal(attn.relative_position_index.long(), expected)
    assert tuple(attn.relative_position_bias_table.shape) == (12, 3)
    assert 'blocks.0.attn.relative_position_index' not in m.state_dict()  # rebuilt, not stored
    assert 'blocks.0.attn.relative_position_bias_table' in m.state_dict()


def test_giant_variant_b_parameter_count_on_meta():
    """EVA-01 seg variant B ViT (896 px, patch 16, no final norm): the plain count plus, per
    block, a (2*56-1)^2 + 3 = 12324 x 16 table and two 1408-d gammas."""
    with torch.device('meta'):
        plain = EVAViT('giant', img_size=896, patch_size=16, final_norm=False)
        b = EVAViT('giant', img_size=896, patch_size=16, final_norm=False,
                   use_rel_pos_bias=True, layer_scale_init_value=1.0)
    d, f = 1408, 6144
    assert count(plain) == 40 * (4 * d * d + 2 * d * f + 8 * d + f) + \
        (3 * 16 * 16 * d + d) + d + 3137 * d == 1_015_451_776
    assert (2 * 56 - 1) ** 2 + 3 == 12324
    assert count(b) - count(plain) == 40 * (12324 * 16 + 2 * 1408) == 8_000_000
    assert count(b) == 1_023_451_776
    assert tuple(b.blocks[39].attn.relative_position_bias_table.shape) == (12324, 16)
    assert tuple(b.blocks[39].attn.relative_position_index.shape) == (3137, 3137)


def _variant_b_from(plain, tiny_arch, **kw):
    b = EVAViT(tiny_arch, img_size=56, use_rel_pos_bias=True, layer_scale_init_value=1.0, **kw)
    b.init_weights()
    res = b.load_state_dict(plain.state_dict(), strict=False)
    assert not res.unexpected_keys
    assert sorted(res.missing_keys) == sorted(
        [f'blocks.{i}.{n}' for i in range(4)
         for n in ('gamma_1', 'gamma_2', 'attn.relative_position_bias_table')])
    return b


@pytest.mark.parametrize('fp32', [False, True])
def test_zero_table_and_unit_gamma_equal_the_plain_block(tiny_arch, fp32):
    torch.manual_seed(0)
    plain = EVAViT(tiny_arch, img_size=56, fp32_attn_and_norm=fp32)
    plain.init_weights()
    b = _variant_b_from(plain, tiny_arch, fp32_attn_and_norm=fp32)
    assert all(not blk.attn.relative_position_bias_table.detach().any() and
               torch.all(blk.gamma_1 == 1) and torch.all(blk.gamma_2 == 1) for blk in b.blocks)
    x = torch.randn(2, 3, 56, 56)
    # same math; SDPA takes another kernel once there is a mask, hence float tolerance
    torch.testing.assert_close(b(x)[0], plain(x)[0])
    with torch.no_grad():  # a non-zero table or gamma changes the output: both are wired in
        b.blocks[1].attn.relative_position_bias_table[5, 0] = 1.0
    assert not torch.allclose(b(x)[0], plain(x)[0])


def test_table_bias_and_layer_scale_match_explicit_reference():
    """Attention with a hand-filled table on a non-square 2x3 grid = softmax(qk^T/sqrt(d) + bias)
    with the bias looked up by explicit loops over (cls / dy, dx); then the block's gammas."""
    from projects.eva.models.eva_vit import Block
    torch.manual_seed(0)
    dim, heads, (h, w) = 12, 3, (2, 3)
    blk = Block(dim, heads, 20, rel_pos_bias_size=(h, w), layer_scale_init_value=0.5)
    attn = blk.attn
    rows = (2 * h - 1) * (2 * w - 1) + 3
    with torch.no_grad():
        attn.relative_position_bias_table.copy_(torch.randn(rows, heads))
        attn.q_bias.normal_()
        attn.v_bias.normal_()
        blk.gamma_1.uniform_(0.5, 1.5)
        blk.gamma_2.uniform_(0.5, 1.5)
    table = attn.relative_position_bias_table.detach()

    def row(i, j):  # token 0 is cls, token t >= 1 is patch t-1 in raster order
        if i == 0 and j == 0:
            return rows - 1
        if i == 0:
            return rows - 3
        if j == 0:
            return rows - 2
        (yi, xi), (yj, xj) = divmod(i - 1, w), divmod(j - 1, w)
        return (yi - yj + h - 1) * (2 * w - 1) + (xi - xj + w - 1)

    def reference(x, with_cls):
        n = x.shape[1]
        ids = list(range(n)) if with_cls else list(range(1, n + 1))
        qkv = x @ attn.qkv.weight.t() + torch.cat([attn.q_bias, torch.zeros(dim), attn.v_bias])
        q, k, v = qkv.view(1, n, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
        bias = torch.tensor([[[table[row(i, j), hd] for j in ids] for i in ids]
                             for hd in range(heads)])
        logits = q @ k.transpose(-2, -1) / math.sqrt(dim // heads) + bias
        out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(1, n, dim)
        return attn.proj(out)

    with torch.no_grad():
        for with_cls in (True, False):
            x = torch.randn(1, h * w + int(with_cls), dim)
            torch.testing.assert_close(attn(x), reference(x, with_cls))
        x = torch.randn(1, h * w + 1, dim)
        y = x + blk.gamma_1 * reference(blk.norm1(x), True)
        y = y + blk.gamma_2 * blk.mlp(blk.norm2(y))
        torch.testing.assert_close(blk(x), y)
        with pytest.raises(ValueError, match='2x3 patch grid'):
            attn(torch.randn(1, 8, dim))
        with pytest.raises(ValueError, match='input grid is'):
            attn(torch.randn(1, 6, dim), (3, 2))


def test_variant_b_with_cp_grads_and_layer_depth(tiny_arch):
    torch.manual_seed(0)
    a = EVAViT(tiny_arch, img_size=56, use_rel_pos_bias=True, layer_scale_init_value=1.0)
    a.init_weights()
    with torch.no_grad():
        for blk in a.blocks:
            blk.attn.relative_position_bias_table.normal_(std=0.5)
            blk.gamma_1.uniform_(0.5, 1.5)
    b = EVAViT(tiny_arch, img_size=56, use_rel_pos_bias=True, layer_scale_init_value=1.0,
               with_cp=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 56, 56)
    ya, yb = a(x)[0], b(x)[0]
    torch.testing.assert_close(ya, yb)
    ya.square().mean().backward()
    yb.square().mean().backward()
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=n)
    for blk in a.blocks:  # the new parameters learn
        assert blk.attn.relative_position_bias_table.grad.abs().sum() > 0
        assert blk.gamma_1.grad.abs().sum() > 0 and blk.gamma_2.grad.abs().sum() > 0
    depth = a.get_layer_depth
    assert depth('backbone.blocks.2.gamma_1', 'backbone.') == (3, 6)
    assert depth('backbone.blocks.0.attn.relative_position_bias_table', 'backbone.') == (1, 6)


def test_variant_b_errors_and_official_index_on_load(tiny_arch):
    from projects.eva.models.eva_vit import beit_relative_position_index
    m = EVAViT(tiny_arch, img_size=56, use_rel_pos_bias=True)  # 4x4 grid
    with pytest.raises(ValueError, match=r'\(4, 4\) patch grid'):
        m(torch.randn(1, 3, 84, 84))
    with pytest.raises(ValueError, match='window_size=0'):
        EVAViT(tiny_arch, img_size=56, with_cls_token=False, use_rel_pos_bias=True, window_size=2)
    sd = m.state_dict()
    sd['blocks.0.attn.relative_position_index'] = beit_relative_position_index(4, 4)  # official
    m.load_state_dict(sd, strict=True)  # checked and dropped
    sd['blocks.0.attn.relative_position_index'] = beit_relative_position_index(4, 4).flip(0)
    with pytest.raises(ValueError, match='not the BEiT index'):
        m.load_state_dict(sd)
    sd = m.state_dict()
    sd['blocks.1.attn.relative_position_bias_table'] = torch.zeros(12324, 3)
    with pytest.raises(ValueError, match='not resized'):
        m.load_state_dict(sd)


def test_variant_b_fp32_attention_under_bf16_autocast(tiny_arch):
    """fp32_attn_and_norm keeps the table bias and softmax in fp32 under autocast."""
    torch.manual_seed(0)
    m = EVAViT(tiny_arch, img_size=56, use_rel_pos_bias=True, layer_scale_init_value=1.0,
               fp32_attn_and_norm=True)
    m.init_weights()
    with torch.no_grad():
        for blk in m.blocks:
            blk.attn.relative_position_bias_table.normal_(std=2.0)
    x = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        ref = m(x)[0]
        with torch.autocast('cpu', dtype=torch.bfloat16):
            low = m(x)[0]
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), ref, rtol=0.05, atol=0.05)


def test_attention_cpu_bf16_explicit_path_matches_sdpa(monkeypatch):
    """CPU bf16 up to 1024 tokens takes the explicit softmax path when autograd records the
    call (its backward is faster there, see docs/performance.md); it must agree with SDPA in
    fp32 to bf16 precision, bias included; inference (no grad: SDPA's forward is faster), fp32
    and longer sequences still go through SDPA."""
    import torch.nn.functional as F
    from projects.eva.models import attention as attn_mod
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 50, 16) for _ in range(3))
    bias = torch.randn(2, 3, 50, 50)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    calls = []
    sdpa = F.scaled_dot_product_attention
    monkeypatch.setattr(attn_mod.F, 'scaled_dot_product_attention',
                        lambda *a, **kw: calls.append(a[0].dtype) or sdpa(*a, **kw))
    q16 = q.bfloat16().requires_grad_()
    out = attn_mod.attention(q16, k.bfloat16(), v.bfloat16(), bias.bfloat16())
    assert calls == [] and out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(attn_mod.attention(q, k, v, bias), ref)
    assert calls == [torch.float32]
    n = attn_mod.CPU_BF16_EXPLICIT_ATTN_MAX_TOKENS + 1
    long_q = torch.randn(1, 1, n, 8, dtype=torch.bfloat16, requires_grad=True)
    attn_mod.attention(long_q, long_q, long_q)
    assert calls == [torch.float32, torch.bfloat16]
    with torch.no_grad():  # inference: SDPA, same numbers to bf16 precision
        out_ng = attn_mod.attention(q16, k.bfloat16(), v.bfloat16(), bias.bfloat16())
    assert calls == [torch.float32, torch.bfloat16, torch.bfloat16]
    torch.testing.assert_close(out_ng.float(), ref, atol=3e-2, rtol=3e-2)
    attn_mod.attention(q.bfloat16(), k.bfloat16(), v.bfloat16())  # nothing requires grad
    assert calls[-1] == torch.bfloat16 and len(calls) == 4
