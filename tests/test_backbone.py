"""EVAViT: exact parameter counts, init, position-embedding resizing, outputs, checkpointing."""
import math

import pytest
import torch
import torch.nn.functional as F

from projects.eva.models import EVAViT
from projects.eva.models.eva_vit import resize_pos_embed


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
