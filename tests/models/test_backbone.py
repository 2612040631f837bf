"""EVAViT, both generations: exact parameter counts, init, position-embedding resizing, outputs,
checkpointing (tests that hold for both run on both tiny layouts), then the EVA-02 options:
presets and exact parameter counts, 2-D RoPE (official formula, run-time tables, per window),
SwiGLU / sub-LN / inner_attn_ln math, init, and the EVA-01 features with these options."""
import math

import pytest
import torch
import torch.nn.functional as F
from eva02_tiny import ARCHS, TINY02, biases_and_norms, randomize

from projects.eva.models import EVAViT
from projects.eva.models.eva_vit import apply_rope, rope_2d
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
@pytest.mark.parametrize('gen', ARCHS)
def test_out_types(gen, out_type, shape):
    m = EVAViT(ARCHS[gen], img_size=56, out_type=out_type, final_norm=out_type != 'avg_featmap',
               out_indices=(1, -1))
    m.init_weights()
    outs = m(torch.randn(2, 3, 56, 56))
    assert len(outs) == 2 and all(o.shape == shape for o in outs)


@pytest.mark.parametrize('gen', ARCHS)
def test_avg_featmap_is_fc_norm_of_patch_mean(gen):
    torch.manual_seed(0)
    raw = EVAViT(ARCHS[gen], img_size=56, out_type='raw', final_norm=False)
    raw.init_weights()
    avg = EVAViT(ARCHS[gen], img_size=56, out_type='avg_featmap', final_norm=False)
    avg.load_state_dict(raw.state_dict(), strict=False)
    x = torch.randn(2, 3, 56, 56)
    tokens = raw(x)[0]
    expected = F.layer_norm(tokens[:, 1:].mean(1), (48, ), avg.fc_norm.weight,
                            avg.fc_norm.bias, 1e-6)
    torch.testing.assert_close(avg(x)[0], expected)


@pytest.mark.parametrize('gen', ARCHS)
def test_pos_embed_resized_on_load(gen):
    src = EVAViT(ARCHS[gen], img_size=56)  # 4x4 grid
    src.init_weights()
    dst = EVAViT(ARCHS[gen], img_size=84)  # 6x6 grid
    missing = dst.load_state_dict(src.state_dict())
    assert not missing.missing_keys and not missing.unexpected_keys
    assert dst.pos_embed.shape == (1, 37, 48)
    grid = src.pos_embed[:, 1:].reshape(1, 4, 4, 48).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(6, 6), mode='bicubic', align_corners=False)
    torch.testing.assert_close(dst.pos_embed[:, 1:], expected.permute(0, 2, 3, 1).reshape(1, 36, 48))
    torch.testing.assert_close(dst.pos_embed[:, :1], src.pos_embed[:, :1])


@pytest.mark.parametrize('gen', ARCHS)
def test_pos_embed_cls_slot_dropped_without_cls_token(gen):
    src = EVAViT(ARCHS[gen], img_size=56)
    src.init_weights()
    det = EVAViT(ARCHS[gen], img_size=56, with_cls_token=False, out_type='featmap')
    det.load_state_dict({k: v for k, v in src.state_dict().items() if k != 'cls_token'})
    torch.testing.assert_close(det.pos_embed, src.pos_embed[:, 1:])


@pytest.mark.parametrize('gen', ARCHS)
def test_pos_embed_resized_at_forward(gen):
    torch.manual_seed(0)
    m = EVAViT(ARCHS[gen], img_size=56)
    m.init_weights()
    x = torch.randn(1, 3, 84, 70)  # 6x5 grid, not square
    out = m(x)[0]
    assert out.shape == (1, 31, 48)
    ref = EVAViT(ARCHS[gen], img_size=(84, 70))
    sd = m.state_dict()
    sd['pos_embed'] = resize_pos_embed(m.pos_embed.data, (4, 4), (6, 5), 1)
    ref.load_state_dict(sd)
    torch.testing.assert_close(out, ref(x)[0])


def assert_same_outputs_and_grads(a, b):
    """``a`` and ``b`` (the same weights, e.g. without and with activation checkpointing) give
    the same first output and the same gradient of every parameter; returns the input."""
    x = torch.randn(2, 3, 56, 56)
    ya, yb = a(x)[0], b(x)[0]
    torch.testing.assert_close(ya, yb)
    ya.square().mean().backward()
    yb.square().mean().backward()
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=n)
    return x


@pytest.mark.parametrize('gen', ARCHS)
def test_with_cp_same_outputs_and_grads(gen):
    torch.manual_seed(0)
    a = EVAViT(ARCHS[gen], img_size=56, drop_path_rate=0.)
    a.init_weights()
    b = EVAViT(ARCHS[gen], img_size=56, with_cp=True)
    b.load_state_dict(a.state_dict())
    assert_same_outputs_and_grads(a, b)


@pytest.mark.parametrize('gen', ARCHS)
def test_mask_token_replaces_patches_before_pos_embed(gen):
    torch.manual_seed(0)
    m = EVAViT(ARCHS[gen], img_size=56, with_mask_token=True)
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


@pytest.mark.parametrize('gen', ARCHS)
def test_bad_input_errors(gen):
    m = EVAViT(ARCHS[gen], img_size=56)
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
    assert_same_outputs_and_grads(a, b)
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


# ================================================================ EVA-02 options
def tiny02(**kw):
    return dict(TINY02, **kw)


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
        large = EVAViT('eva02-large')  # 300M parameters: on meta, no memory, no init time
    assert tuple(ti.blocks[0].mlp.w12.weight.shape) == (1024, 192)  # fused, 2H x D
    assert hasattr(ti.blocks[0].attn, 'qkv') and ti.blocks[0].mlp.__class__.__name__ == \
        'SwiGLUFused'
    assert tuple(b.blocks[0].mlp.ffn_ln.weight.shape) == (2048, )
    assert not hasattr(b.blocks[0].attn, 'qkv') and b.blocks[0].attn.k_proj.bias is None
    assert [k for k, _ in same.named_parameters()] == [k for k, _ in b.named_parameters()]
    assert large.blocks[0].mlp.w1.out_features == int(1024 * 4 * 2 / 3) == 2730
    with pytest.raises(KeyError, match='unknown keys'):
        EVAViT(tiny02(swiglu=True))
    with pytest.raises(ValueError, match='mlp_type'):
        EVAViT(tiny02(mlp_type='geglu'))
    with pytest.raises(ValueError, match='fused SwiGLU'):
        EVAViT(tiny02(mlp_type='swiglu_fused'))
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
    randomize(m, 0.1, seed=None, only=biases_and_norms)  # biases / norms off their init values
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
    x = assert_same_outputs_and_grads(a, b)
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
