"""EVAViT's detection options: windowed attention with global blocks (padding windows
that do not divide the grid), rel-pos table resizing (linear and EVA-01's BEiT
geometric interpolation) and when the BEiT one applies."""
import numpy as np
import pytest
import torch
from projects.eva.models.eva_vit import EVAViT
from projects.eva.models.vit_adapt import resize_rel_pos, resize_rel_pos_beit


# ------------------------------------------------------------------ backbone options
def _det_vit(tiny_arch, **kw):
    cfg = dict(arch=tiny_arch, img_size=64, patch_size=16, pos_embed_size=64,
               out_type='featmap', final_norm=False, with_cls_token=False, use_rel_pos=True)
    cfg.update(kw)
    return EVAViT(**cfg)


def test_window_attention_equals_global_when_window_covers_map(tiny_arch):
    torch.manual_seed(0)
    full = _det_vit(tiny_arch, window_size=0).eval()
    full.init_weights()
    with torch.no_grad():  # non-zero rel-pos tables so they matter
        for name, p in full.named_parameters():
            if 'rel_pos' in name:
                p.normal_(0, 0.5)
    win = _det_vit(tiny_arch, window_size=4, global_block_indices=(1, 3)).eval()
    win.load_state_dict(full.state_dict(), strict=True)
    small = _det_vit(tiny_arch, window_size=2, global_block_indices=(1, 3)).eval()
    small.load_state_dict(full.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)  # 4x4 tokens: window 4 covers the map
    with torch.no_grad():
        ref, same, other = full(x)[0], win(x)[0], small(x)[0]
    assert ref.shape == (2, tiny_arch['embed_dims'], 4, 4)
    torch.testing.assert_close(same, ref, rtol=1e-5, atol=1e-5)
    assert (other - ref).abs().max() > 1e-3  # 2x2 windows do change the result
    # windows that do not divide the grid are padded: a 5x5 grid with window 4 still runs
    with torch.no_grad():
        assert win(torch.randn(1, 3, 80, 80))[0].shape == (1, tiny_arch['embed_dims'], 5, 5)


def _beit_reference(table: np.ndarray, dst: int) -> np.ndarray:
    """EVA-01's per-channel loop (geometric progression q = 1.0903078, cubic interp1d)."""
    from scipy import interpolate
    src = table.shape[0]
    dis, cur = [], 1.0
    for i in range(src // 2):
        dis.append(cur)
        cur += 1.0903078 ** (i + 1)
    x = [-d for d in reversed(dis)] + [0] + dis
    t = dst // 2.0
    dx = np.arange(-t, t + 0.1, 1.0)
    return np.stack([interpolate.interp1d(x, table[:, c], kind='cubic',
                                          fill_value='extrapolate')(dx)
                     for c in range(table.shape[1])], axis=1)


def test_rel_pos_resize_linear_and_beit():
    torch.manual_seed(0)
    table = torch.randn(31, 8)
    assert resize_rel_pos(table, 31) is table
    const = torch.full((31, 3), 2.5)
    torch.testing.assert_close(resize_rel_pos(const, 47), torch.full((47, 3), 2.5))
    torch.testing.assert_close(resize_rel_pos_beit(const, 47), torch.full((47, 3), 2.5))
    out = resize_rel_pos_beit(table, 39)  # EVA-01: 159 -> 191 for 1280 -> 1536
    assert out.shape == (39, 8)
    np.testing.assert_allclose(out.numpy(), _beit_reference(table.numpy(), 39), rtol=1e-5,
                               atol=1e-5)
    torch.testing.assert_close(out[19], table[15])  # offset 0 stays on the centre node
    with pytest.raises(ValueError, match='rel-pos interpolation'):
        resize_rel_pos(table, 33, 'nearest')


def test_beit_interp_only_changes_larger_inputs(tiny_arch):
    torch.manual_seed(0)
    lin = _det_vit(tiny_arch, window_size=2, global_block_indices=(3, )).eval()
    lin.init_weights()
    with torch.no_grad():
        for name, p in lin.named_parameters():
            if 'rel_pos' in name:
                p.normal_(0, 0.5)
    beit = _det_vit(tiny_arch, window_size=2, global_block_indices=(3, ),
                    rel_pos_interp='beit').eval()
    beit.load_state_dict(lin.state_dict())
    x, big = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(beit(x)[0], lin(x)[0])
        assert (beit(big)[0] - lin(big)[0]).abs().max() > 1e-4
    with pytest.raises(ValueError, match='rel_pos_interp'):
        _det_vit(tiny_arch, rel_pos_interp='cubic')
