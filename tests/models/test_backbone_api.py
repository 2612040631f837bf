"""EVAViT's composable API: embed / forward_blocks / forward_features / forward_intermediates,
and block indices that are checked instead of wrapping around."""
import pytest
import torch

from projects.eva.models import EVAViT


def _model(tiny_arch, **kw):
    torch.manual_seed(0)
    m = EVAViT(tiny_arch, img_size=56, **kw)
    m.init_weights()
    return m.eval()


def _explicit(m, x, mask=None):
    """The pipeline spelled out on the sub-modules: patch embed, mask, cls, pos, blocks."""
    tokens, grid = m.patch_embed(x)
    if mask is not None:
        w = mask.reshape(x.shape[0], -1, 1).float()
        tokens = tokens * (1 - w) + m.mask_token * w
    if m.cls_token is not None:
        tokens = torch.cat([m.cls_token.expand(x.shape[0], -1, -1), tokens], 1)
    tokens = tokens + m.pos_embed
    hw = grid if m.cls_token is None else None
    outs = []
    for blk in m.blocks:
        tokens = blk(tokens, hw)
        outs.append(tokens)
    return outs, grid


def test_embed_and_forward_blocks_compose_to_forward(tiny_arch):
    m = _model(tiny_arch, with_mask_token=True, out_indices=(0, 2, 3))
    x = torch.randn(2, 3, 56, 56)
    mask = torch.rand(2, 16) > 0.5
    with torch.no_grad():
        ref, grid = _explicit(m, x, mask)
        tokens, g = m.embed(x, mask)
        assert g == grid == (4, 4) and tokens.shape == (2, 17, 48)
        # blocks in two pieces = all blocks at once
        part = m.forward_blocks(m.forward_blocks(tokens, g, 0, 2), g, 2, 4)
        torch.testing.assert_close(part, m.forward_blocks(tokens, g), rtol=0, atol=0)
        torch.testing.assert_close(part, ref[3], rtol=0, atol=0)
        outs = m(x, mask)
        # the final norm belongs to the last block's output only
        torch.testing.assert_close(outs[0], ref[0], rtol=0, atol=0)
        torch.testing.assert_close(outs[1], ref[2], rtol=0, atol=0)
        torch.testing.assert_close(outs[2], m.norm(ref[3]), rtol=0, atol=0)
        torch.testing.assert_close(m.forward_features(x, mask), m.norm(ref[3]), rtol=0, atol=0)


def test_embed_without_cls_position(tiny_arch):
    m = _model(tiny_arch)
    x = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        with_pos, _ = m.embed(x)
        without, _ = m.embed(x, cls_pos=False)
    torch.testing.assert_close(without[:, 1:], with_pos[:, 1:], rtol=0, atol=0)
    torch.testing.assert_close(without[:, :1], m.cls_token, rtol=0, atol=0)
    torch.testing.assert_close(with_pos[:, :1], m.cls_token + m.pos_embed[:, :1])


def test_forward_intermediates(tiny_arch):
    m = _model(tiny_arch, out_type='featmap')
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        ref, _ = _explicit(m, x)
        raw = m.forward_intermediates(x, indices=[1, -1], output_fmt='raw')
        assert len(raw) == 2
        torch.testing.assert_close(raw[0], ref[1], rtol=0, atol=0)
        torch.testing.assert_close(raw[1], ref[3], rtol=0, atol=0)  # norm=False: not normed
        normed = m.forward_intermediates(x, indices=2, norm=True, output_fmt='raw')  # last 2
        torch.testing.assert_close(normed[0], m.norm(ref[2]), rtol=0, atol=0)
        torch.testing.assert_close(normed[1], m.norm(ref[3]), rtol=0, atol=0)
        maps = m.forward_intermediates(x, indices=[0])  # default format: out_type
        assert maps[0].shape == (2, 48, 4, 4)
        torch.testing.assert_close(maps[0].flatten(2).transpose(1, 2), ref[0][:, 1:])
        cls = m.forward_intermediates(x, indices=[3], output_fmt='cls_token')
        torch.testing.assert_close(cls[0], ref[3][:, 0])
    with pytest.raises(IndexError, match='out of range'):
        m.forward_intermediates(x, indices=[4])
    with pytest.raises(IndexError, match='last 5'):
        m.forward_intermediates(x, indices=5)
    with pytest.raises(ValueError, match='avg_featmap'):
        m.forward_intermediates(x, indices=[0], output_fmt='avg_featmap')
    with pytest.raises(ValueError, match='final_norm'):
        _model(tiny_arch, final_norm=False).forward_intermediates(x, indices=[0], norm=True)


def test_forward_intermediates_stops_after_the_last_index(tiny_arch):
    m = _model(tiny_arch)
    calls = []
    for i, blk in enumerate(m.blocks):
        blk.register_forward_hook(lambda *a, i=i: calls.append(i))
    with torch.no_grad():
        m.forward_intermediates(torch.randn(1, 3, 56, 56), indices=[1])
    assert calls == [0, 1]


@pytest.mark.parametrize('key', ['out_indices', 'global_block_indices'])
@pytest.mark.parametrize('index', [4, -5, 40])
def test_block_indices_out_of_range_are_errors(tiny_arch, key, index):
    kw = dict(with_cls_token=False, out_type='featmap', window_size=2) \
        if key == 'global_block_indices' else {}
    with pytest.raises(IndexError, match=f'{key}: block {index} is out of range for 4 blocks'):
        EVAViT(tiny_arch, img_size=56, **{key: [index]}, **kw)


def test_negative_indices_in_range_still_count_from_the_end(tiny_arch):
    m = EVAViT(tiny_arch, img_size=56, out_indices=(-1, 1), with_cls_token=False,
               out_type='featmap', window_size=2, global_block_indices=(-4, 3))
    assert m.out_indices == [1, 3]
    assert [blk.window_size for blk in m.blocks] == [0, 2, 2, 0]


def test_forward_blocks_checks_its_input_once(tiny_arch):
    m = _model(tiny_arch, with_cls_token=False, out_type='featmap', window_size=2)
    tokens, grid = m.embed(torch.randn(1, 3, 56, 56))
    with pytest.raises(ValueError, match='do not match the patch grid'):
        m.forward_blocks(tokens[:, 1:], grid)
    with pytest.raises(IndexError, match='outside'):
        m.forward_blocks(tokens, grid, 2, 5)
    video = EVAViT(tiny_arch, img_size=56, num_frames=2, with_cls_token=False,
                   out_type='featmap', window_size=2)
    tokens, grid = video.embed(torch.randn(1, 3, 2, 56, 56))
    with pytest.raises(ValueError, match=r'image \(h, w\) grid'):
        video.forward_blocks(tokens, grid)
