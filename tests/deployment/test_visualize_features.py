"""tools/analysis_tools/visualize_features.py on real photographs (scikit-learn's china.jpg
and flower.jpg): files and sizes, the PCA map is the PCA of the features, and the attention
maps are the cls row of the model's own attention (checked against a second, independent
computation through timm-style explicit attention on the same q/k)."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS = osp.join(ROOT, 'configs', 'demo', 'eva-cls_vit-tiny-p14_1xb64-80e_digits.py')
SIZE = (112, 84)  # 8 x 6 patches of 14 px: not square, not the model's 56 px


def _tool():
    spec = importlib.util.spec_from_file_location(
        'visualize_features', osp.join(ROOT, 'tools', 'analysis_tools', 'visualize_features.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _photo(name):
    import sklearn.datasets
    return osp.join(osp.dirname(sklearn.datasets.__file__), 'images', name)


@pytest.fixture(scope='module')
def model():
    from projects.eva.apis.build import build_model
    torch.manual_seed(0)
    m = build_model(CLS)
    with torch.no_grad():  # non-zero q/v biases so the bias handling is exercised
        for blk in m.backbone.blocks:
            blk.attn.q_bias.normal_(0, 0.5)
            blk.attn.v_bias.normal_(0, 0.5)
    return m


def test_files_written_at_image_size(model, tmp_path, one_thread):
    from PIL import Image
    tool = _tool()
    out = tool.visualize(model, _photo('china.jpg'), str(tmp_path), attn_blocks=(0, -1),
                         size=SIZE)
    assert set(out) == {'pca', 'attn_block0', 'attn_block3', 'npz'}
    for key in ('pca', 'attn_block0', 'attn_block3'):
        img = Image.open(out[key])
        assert img.size == (640, 427) and img.mode == 'RGB', (key, img.size, img.mode)
    maps = np.load(out['npz'])
    assert maps['pca'].shape == (8, 6, 3)
    assert maps['attn_block0'].shape == (3, 8, 6)  # heads x grid
    # each head's cls row is a softmax over cls + 48 patches: the patch part sums below 1
    sums = maps['attn_block3'].reshape(3, -1).sum(1)
    assert np.all(sums > 0) and np.all(sums < 1)


def test_pca_map_is_the_pca_of_the_features(model, one_thread):
    from sklearn.decomposition import PCA
    import mmcv
    tool = _tool()
    x = tool.preprocess(model, mmcv.imread(_photo('china.jpg')), SIZE)
    feats, _, grid = tool.extract(model, x, [], -1)
    # the same tokens straight from the backbone: last block, patch tokens
    raw = model.backbone
    raw.out_type = 'raw'
    try:
        tokens = raw(x)[-1][0, 1:]
    finally:
        raw.out_type = 'avg_featmap'
    torch.testing.assert_close(feats, tokens)
    rgb = tool.pca_rgb(feats.numpy(), grid).reshape(-1, 3)
    ref = PCA(3).fit_transform(feats.numpy().astype(np.float64))
    for c in range(3):  # same axes up to sign and min-max scaling: |corr| = 1
        corr = np.corrcoef(rgb[:, c], ref[:, c])[0, 1]
        assert abs(corr) > 0.999, (c, corr)


def test_maps_depend_on_the_image(model, tmp_path, one_thread):
    tool = _tool()
    a = np.load(tool.visualize(model, _photo('china.jpg'), str(tmp_path / 'a'), size=SIZE)['npz'])
    b = np.load(tool.visualize(model, _photo('flower.jpg'), str(tmp_path / 'b'), size=SIZE)['npz'])
    assert np.abs(a['pca'] - b['pca']).mean() > 0.05
    assert np.abs(a['attn_block3'] - b['attn_block3']).max() > 1e-3


def test_attention_is_the_models_own(model, one_thread):
    """The recomputed cls row equals the attention the block really applied: its output
    proj(softmax(qk^T) v) is reproduced from the recomputed probabilities and v."""
    tool = _tool()
    attn = model.backbone.blocks[1].attn
    x = torch.randn(1, 1 + 12, attn.num_heads * attn.head_dim)
    probs = tool.attention_probs(attn, x)
    torch.testing.assert_close(probs.sum(-1), torch.ones(1, attn.num_heads, 13))
    bias = torch.cat([attn.q_bias, attn.k_bias, attn.v_bias])
    v = torch.nn.functional.linear(x, attn.qkv.weight, bias).view(
        1, 13, 3, attn.num_heads, attn.head_dim)[:, :, 2].transpose(1, 2)
    y = attn.proj((probs @ v).transpose(1, 2).reshape(1, 13, -1))
    torch.testing.assert_close(y, attn(x), rtol=1e-4, atol=1e-5)


def test_video_model_is_refused_with_the_reason(tmp_path):
    """It used to fail deep inside with "cannot resize a (8, 4, 4) position grid"."""
    from projects.eva.apis.build import build_model
    video = build_model(osp.join(ROOT, 'configs', 'demo',
                                'eva-video_vit-tiny-p14_1xb16-8e_moving-shapes.py'), None)
    with pytest.raises(ValueError, match='video backbone .num_frames=8'):
        _tool().visualize(video, _photo('china.jpg'), str(tmp_path))


def test_detection_backbone_has_no_cls_attention(tmp_path):
    tool = _tool()
    from projects.eva.apis.build import build_model
    det = build_model(osp.join(ROOT, 'configs', 'demo',
                              'eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py'), None)
    with pytest.raises(ValueError, match='cls token'):
        tool.visualize(det, _photo('china.jpg'), str(tmp_path), attn_blocks=(-1, ))
    out = tool.visualize(det, _photo('china.jpg'), str(tmp_path), attn_blocks=(),
                         size=(128, 160))
    assert np.load(out['npz'])['pca'].shape == (8, 10, 3)


def test_attention_with_rope_and_split_qkv(one_thread):
    """EVA-02 layout (separate q/k/v, sub-LN, 2-D RoPE passed by the blocks): the hook gets
    the RoPE tables and the recomputed probabilities reproduce each block's attention
    output inside a real forward."""
    from projects.eva.models.eva_vit import EVAViT
    tool = _tool()
    torch.manual_seed(0)
    vit = EVAViT(arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64,
                           mlp_type='swiglu', sub_ln=True, rope=True),
                 img_size=56, patch_size=14).eval()
    vit.init_weights()
    seen = {}
    hooks = [blk.attn.register_forward_pre_hook(
        lambda m, a, kw, i=i: seen.__setitem__(('in', i), (a, kw)), with_kwargs=True)
        for i, blk in enumerate(vit.blocks)]
    hooks += [blk.attn.register_forward_hook(
        lambda m, a, out, i=i: seen.__setitem__(('out', i), out))
        for i, blk in enumerate(vit.blocks)]
    with torch.no_grad():
        vit(torch.randn(1, 3, 84, 70))
    for h in hooks:
        h.remove()
    for i, blk in enumerate(vit.blocks):
        args, kwargs = seen[('in', i)]
        x = args[0]
        rope = kwargs.get('rope', args[2] if len(args) > 2 else None)
        assert rope is not None  # RoPE reached the hook
        with torch.no_grad():
            probs = tool.attention_probs(blk.attn, *args, **kwargs)
            v = blk.attn.project_qkv(x)[2]
            y = (probs @ v).transpose(1, 2).reshape(x.shape)
            if blk.attn.inner_attn_ln is not None:
                y = blk.attn.inner_attn_ln(y)
            y = blk.attn.proj(y)
        torch.testing.assert_close(y, seen[('out', i)], rtol=1e-4, atol=1e-5)
