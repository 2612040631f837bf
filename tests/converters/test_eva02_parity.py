"""EVA-02 parity: random timm ``eva02_*`` models and mmpretrain ``ViTEVA02`` saved, converted
with tools/model_converters/eva_to_mm.py and loaded into EVAViT give the same features and
logits (timm at its own resolution and at a second one)."""
import pytest
import torch
from eva02_tiny import biases_and_norms, randomize
from mmpretrain.registry import MODELS

import projects.eva.classification  # noqa: F401  (EVAClsHead)
from projects.eva.models import EVAViT
from projects.eva.models.eva_vit import rope_2d

timm = pytest.importorskip('timm')
TOL = dict(rtol=1e-5, atol=1e-5)


def convert(tmp_path, model_sd, name='src'):
    from tools.model_converters.eva_to_mm import main
    src, dst = tmp_path / f'{name}.pth', tmp_path / f'{name}_mm.pth'
    torch.save(model_sd, src)
    main([str(src), str(dst)])
    out = torch.load(dst, weights_only=True)
    assert not any('rope' in k for k in out['state_dict'])
    return out


def classifier(arch, img_size, num_classes, patch_size=14):
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='EVAViT', arch=arch, img_size=img_size, patch_size=patch_size,
                      out_type='avg_featmap', final_norm=False),
        head=dict(type='EVAClsHead', num_classes=num_classes,
                  in_channels=embed_dims_of(arch))))
    return model.eval()


def embed_dims_of(arch):
    from projects.eva.models.eva_vit import parse_arch
    return parse_arch(arch)['embed_dims']


def load(model, converted):
    res = model.load_state_dict(converted['state_dict'], strict=True)
    assert not res.missing_keys and not res.unexpected_keys


def compare_classifier(ours, theirs, x):
    with torch.no_grad():
        torch.testing.assert_close(ours.backbone.forward_features(x),
                                   theirs.forward_features(x), **TOL)
        torch.testing.assert_close(ours(x, mode='tensor'), theirs(x), **TOL)


def test_timm_eva02_tiny_at_224_and_336(tmp_path, one_thread):
    """The real eva02-tiny preset (fused SwiGLU + qkv): 224 (16x16 = the RoPE reference grid)
    and 336 (24x24: timm's resized position table, RoPE positions i * 16 / 24)."""
    from timm.models.eva import checkpoint_filter_fn
    torch.manual_seed(0)
    t224 = timm.create_model('eva02_tiny_patch14_224', pretrained=False, num_classes=7).eval()
    with torch.no_grad():  # a random head / fc_norm that matter
        t224.head.weight.normal_(std=0.2)
        t224.fc_norm.weight.normal_(1, 0.2)
    converted = convert(tmp_path, t224.state_dict())
    assert converted['meta']['source_format'] == 'timm-eva02'
    ours = classifier('eva02-tiny', 224, 7)
    load(ours, converted)
    compare_classifier(ours, t224, torch.randn(2, 3, 224, 224))

    t336 = timm.create_model('eva02_tiny_patch14_224', pretrained=False, num_classes=7,
                             img_size=336).eval()
    t336.load_state_dict(checkpoint_filter_fn(t224.state_dict(), t336))
    assert tuple(t336.pos_embed.shape) == (1, 577, 192)
    ours336 = classifier('eva02-tiny', 336, 7)
    load(ours336, convert(tmp_path, t336.state_dict(), 'src336'))
    compare_classifier(ours336, t336, torch.randn(1, 3, 336, 336))


def small_arch(**kw):
    return dict(dict(embed_dims=64, num_layers=2, num_heads=2, feedforward_channels=170,
                     mlp_type='swiglu', sub_ln=True, rope=True), **kw)


def test_timm_eva02_base_layout_sub_ln_split_qkv(tmp_path):
    """timm's B/L layout (SwiGLU fc1_g/fc1_x/norm/fc2, q/k/v projections) at reduced width,
    at its own 4x4 grid and at 6x6 (pos table resized by timm)."""
    from timm.models.eva import checkpoint_filter_fn
    torch.manual_seed(0)
    kw = dict(pretrained=False, depth=2, embed_dim=64, num_heads=2, num_classes=5)
    src = timm.create_model('eva02_base_patch14_224', img_size=56, **kw).eval()
    randomize(src, 0.2, seed=None, only=biases_and_norms)  # biases and norms off their init values
    assert tuple(src.blocks[0].mlp.fc1_g.weight.shape) == (170, 64)
    ours = classifier(small_arch(), 56, 5)
    load(ours, convert(tmp_path, src.state_dict()))
    compare_classifier(ours, src, torch.randn(2, 3, 56, 56))
    big = timm.create_model('eva02_base_patch14_224', img_size=84, **kw).eval()
    big.load_state_dict(checkpoint_filter_fn(src.state_dict(), big))
    ours84 = classifier(small_arch(), 84, 5)
    load(ours84, convert(tmp_path, big.state_dict(), 'big'))
    compare_classifier(ours84, big, torch.randn(1, 3, 84, 84))


def test_timm_eva02_clip_tower_inner_attn_ln(tmp_path):
    """``eva02_base_patch16_clip_224`` layout (scale_attn_inner = inner_attn_ln, token
    pooling after the final norm, projection head) at reduced width."""
    torch.manual_seed(0)
    src = timm.create_model('eva02_base_patch16_clip_224', pretrained=False, depth=2,
                            embed_dim=64, num_heads=2, num_classes=24, img_size=64).eval()
    randomize(src, 0.2, seed=None, only=biases_and_norms)
    converted = convert(tmp_path, src.state_dict())
    sd = converted['state_dict']
    ours = EVAViT(small_arch(inner_attn_ln=True), img_size=64, patch_size=16,
                  out_type='cls_token', final_norm=True).eval()
    res = ours.load_state_dict({k[len('backbone.'):]: v for k, v in sd.items()
                                if k.startswith('backbone.')}, strict=True)
    assert not res.missing_keys
    assert sorted(k for k in sd if not k.startswith('backbone.')) == \
        ['clip_projection.bias', 'clip_projection.weight']
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours.forward_features(x), src.forward_features(x), **TOL)
        emb = torch.nn.functional.linear(ours(x)[-1], sd['clip_projection.weight'],
                                         sd['clip_projection.bias'])
        torch.testing.assert_close(emb, src(x), **TOL)


@pytest.mark.parametrize('arch,sub_ln,ours_arch', [
    ('tiny', False, 'eva02-tiny'),
    (dict(embed_dims=64, num_layers=2, num_heads=2, feedforward_channels=170), True,
     small_arch())])
def test_mmpretrain_vit_eva02_at_its_own_resolution(tmp_path, arch, sub_ln, ours_arch):
    """mmpretrain's RoPE buffers are not the official formula (docs/eva02.md); its released
    checkpoints carry the official tables in those buffers. So the reference here is
    mmpretrain with the official tables written into its buffers (and, as in the converted
    official weights, a zero k bias); the converter drops the buffers."""
    torch.manual_seed(0)
    src = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='ViTEVA02', arch=arch, img_size=56, patch_size=14, sub_ln=sub_ln,
                      final_norm=False, out_type='avg_featmap',
                      norm_cfg=dict(type='LN', eps=1e-6)),
        head=dict(type='LinearClsHead', num_classes=6,
                  in_channels=192 if arch == 'tiny' else arch['embed_dims'])))
    src.init_weights()
    src.eval()
    rope = src.backbone.rope
    official = rope_2d((4, 4), src.backbone.embed_dims // src.backbone.num_heads, (16, 16))
    assert not torch.allclose(rope.freqs_cos.reshape(official[0].shape), official[0],
                              atol=1e-3)  # mmpretrain's own table deviates
    with torch.no_grad():
        rope.freqs_cos.copy_(official[0].reshape(rope.freqs_cos.shape))
        rope.freqs_sin.copy_(official[1].reshape(rope.freqs_sin.shape))
        d = src.backbone.embed_dims
        for layer in src.backbone.layers:
            layer.attn.qkv.bias[d:2 * d].zero_()
    randomize(src, 0.2, seed=None, only=lambda n, p: p.ndim == 1 and 'qkv' not in n)
    converted = convert(tmp_path, {'state_dict': src.state_dict()})
    assert converted['meta']['source_format'] == 'mmpretrain-eva02'
    ours = classifier(ours_arch, 56, 6)
    load(ours, converted)
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        torch.testing.assert_close(ours.backbone(x)[-1], src.backbone(x)[-1], **TOL)
        torch.testing.assert_close(ours(x, mode='tensor'), src(x, mode='tensor'), **TOL)
    # a non-zero k bias is refused by name, not silently dropped
    sd = src.state_dict()
    sd['backbone.layers.1.attn.qkv.bias'] = torch.ones_like(sd['backbone.layers.1.attn.qkv.bias'])
    with pytest.raises((ValueError, SystemExit), match=r'layers\.1\.attn\.qkv\.bias.*k part'):
        convert(tmp_path, {'state_dict': sd}, 'kbias')


def test_own_eva02_run_converts_to_its_backbone(tmp_path):
    """An EVA-02 B/L ImageClassifier run (split q/k/v) -> backbone only, for transfer."""
    torch.manual_seed(0)
    run = classifier(small_arch(), 56, 3)
    converted = convert(tmp_path, {'state_dict': run.state_dict(), 'meta': {}})
    assert converted['meta']['source_format'] == 'own-run'
    assert all(k.startswith('backbone.') for k in converted['state_dict'])
    det = EVAViT(small_arch(), img_size=56, with_cls_token=False, out_type='featmap',
                 final_norm=False)
    det.load_state_dict({k[len('backbone.'):]: v for k, v in converted['state_dict'].items()
                         if k != 'backbone.cls_token' and 'fc_norm' not in k})
    torch.testing.assert_close(det.blocks[1].attn.q_proj.weight,
                               run.backbone.blocks[1].attn.q_proj.weight)
