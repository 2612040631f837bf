"""The converters (projects/eva/converters), one registry for both generations.

EVA-01: every released image-backbone format converts, every tensor lands; numerics match timm and
mmpretrain's BEiTViT.

EVA-02: the official EVA-02 files (MIM ``eva02_*_pt_*_p14`` / ``_p14to16``, classification with EMA,
detectron2 det, mmseg UperNet seg), written here key by key from their documented layouts
(../shared/docs/eva02_reference.md section 9) at tiny widths, convert and load strictly into
our models; the MIM and classification files give timm's eva02 numbers (timm reads the same
files with its own ``checkpoint_filter_fn``). Also: safetensors files, format names and
look-alikes that are refused."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import timm
import torch
import torch.nn.functional as F
from eva02_tiny import randomize
from mmpretrain.registry import MODELS

import projects.eva.classification  # noqa: F401
import projects.eva.pretrain  # noqa: F401
from projects.eva.converters import convert_checkpoint, detect_format, format_names, get_format
from projects.eva.models import CLIPVisionTower, EVAViT

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# helpers of other test folders (tests/ holds no packages; site-packages has a ``tests``)
sys.path[:0] = [osp.join(ROOT, 'tests', d) for d in ('video', 'detection')]
ARCH = dict(embed_dims=48, num_layers=2, num_heads=3, feedforward_channels=131)


def vit_state_dict(img_size=56, patch_size=14, seed=0):
    """A random EVA ViT in the official EVA-01 key layout (our names are EVA-01's)."""
    torch.manual_seed(seed)
    m = EVAViT(ARCH, img_size=img_size, patch_size=patch_size, final_norm=False)
    m.init_weights()
    sd = {k: torch.randn_like(v) * 0.02 for k, v in m.state_dict().items()}
    return sd


def save(obj, path):
    torch.save(obj, path)
    return str(path)


def classifier(num_classes=5, img_size=56, out_type='avg_featmap', final_norm=False):
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='EVAViT', arch=ARCH, img_size=img_size, out_type=out_type,
                      final_norm=final_norm),
        head=dict(type='EVAClsHead', num_classes=num_classes, in_channels=48)))


def assert_all_landed(model, src, mapping):
    """Strict load, then every source tensor equals its destination."""
    model.load_state_dict(mapping, strict=True)
    dst = model.state_dict()
    for k, v in mapping.items():
        torch.testing.assert_close(dst[k], v, msg=k)
    assert len(mapping) == len(src), (len(mapping), len(src))


def test_eva01_mim_fp16_round_trip(tmp_path):
    sd = vit_state_dict()
    sd.update(mask_token=torch.randn(1, 1, 48), **{
        'norm.weight': torch.randn(48), 'norm.bias': torch.randn(48),
        'lm_head.weight': torch.randn(16, 48), 'lm_head.bias': torch.randn(16)})
    sd = {k: v.half() for k, v in sd.items()}  # eva_psz14.pt is DeepSpeed fp16
    src = save({'model': sd}, tmp_path / 'eva_psz14.pt')
    out = convert_checkpoint(src)
    assert out['meta']['source_format'].startswith('eva01-mim')
    conv = out['state_dict']
    assert all(v.dtype == torch.float32 for v in conv.values())
    mim = MODELS.build(dict(
        type='EVAMIM',
        backbone=dict(type='EVAViT', arch=ARCH, img_size=56, out_type='raw', final_norm=True,
                      with_mask_token=True),
        head=dict(type='EVAMIMHead', in_channels=48, out_channels=16),
        teacher=CLIPVisionTower(arch=dict(width=16, layers=1, heads=2, patch_size=14,
                                          image_size=56, output_dim=16))))
    assert_all_landed(mim, sd, conv)
    torch.testing.assert_close(mim.head.lm_head.weight, sd['lm_head.weight'].float())


def test_patch_size_14_to_16(tmp_path):
    sd = vit_state_dict(img_size=112)  # 8x8 grid at patch 14 (EVA: 16x16 at 224)
    sd.update(**{'norm.weight': torch.ones(48), 'norm.bias': torch.zeros(48),
                 'lm_head.weight': torch.randn(16, 48), 'lm_head.bias': torch.randn(16)})
    src = save({'model': sd}, tmp_path / 'eva_psz14.pt')
    conv = convert_checkpoint(src, patch_size=16)['state_dict']
    w = conv['backbone.patch_embed.proj.weight']
    assert w.shape == (48, 3, 16, 16)
    expected = F.interpolate(sd['patch_embed.proj.weight'], size=(16, 16), mode='bicubic',
                             align_corners=False)
    torch.testing.assert_close(w, expected)  # plain resize, no magnitude rescale
    pos = conv['backbone.pos_embed']
    assert pos.shape == (1, 1 + 7 * 7, 48)  # 8x8 -> 7x7: the same 112 px at patch 16
    grid = sd['pos_embed'][:, 1:].reshape(1, 8, 8, 48).permute(0, 3, 1, 2)
    ref = F.interpolate(grid, size=(7, 7), mode='bicubic', align_corners=False)
    torch.testing.assert_close(pos[:, 1:], ref.permute(0, 2, 3, 1).reshape(1, 49, 48))
    # an already-converted eva_psz14to16.pt is recognised and left as is
    src16 = save({'model': {k[len('backbone.'):] if k.startswith('backbone.') else
                            k[len('head.'):]: v for k, v in conv.items()}},
                 tmp_path / 'eva_psz14to16.pt')
    again = convert_checkpoint(src16, patch_size=16)['state_dict']
    torch.testing.assert_close(again['backbone.patch_embed.proj.weight'], w)
    model = EVAViT(ARCH, img_size=112, patch_size=16, pos_embed_size=112)
    model.load_state_dict({k[len('backbone.'):]: v for k, v in conv.items()
                           if k.startswith('backbone.') and k != 'backbone.norm.weight'
                           and k != 'backbone.norm.bias'}, strict=False)
    assert model(torch.randn(1, 3, 112, 112))[0].shape == (1, 50, 48)


@pytest.mark.parametrize('container', ['model', 'module', 'state_dict', None])
def test_classification_checkpoint_containers(tmp_path, container):
    sd = vit_state_dict()
    sd.update(**{'fc_norm.weight': torch.randn(48), 'fc_norm.bias': torch.randn(48),
                 'head.weight': torch.randn(5, 48), 'head.bias': torch.randn(5)})
    body = {'module.' + k: v for k, v in sd.items()} if container == 'module' else sd
    obj = body if container is None else {container: body, 'epoch': 3}
    src = save(obj, tmp_path / 'eva_21k_1k_336px_psz14_ema_89p6.pt')
    conv = convert_checkpoint(src)['state_dict']
    assert conv['head.fc.weight'].shape == (5, 48)
    assert_all_landed(classifier(), sd, conv)


def test_eva_clip_vision_encoder(tmp_path):
    sd = vit_state_dict()
    sd.update(**{'norm.weight': torch.randn(48), 'norm.bias': torch.randn(48),
                 'head.weight': torch.randn(1024, 48), 'head.bias': torch.randn(1024)})
    src = save({'visual.' + k: v for k, v in sd.items()}, tmp_path / 'visual_only.pt')
    conv = convert_checkpoint(src)['state_dict']
    assert 'clip_projection.weight' in conv and 'backbone.norm.weight' in conv
    model = EVAViT(ARCH, img_size=56, out_type='cls_token', final_norm=True)
    backbone_sd = {k[len('backbone.'):]: v for k, v in conv.items() if k.startswith('backbone.')}
    model.load_state_dict(backbone_sd, strict=True)
    assert len(backbone_sd) + 2 == len(sd)


def test_unknown_and_partial_formats_fail_clearly(tmp_path):
    src = save({'model': {'foo.weight': torch.zeros(2), 'bar': torch.zeros(1)}},
               tmp_path / 'x.pt')
    with pytest.raises(ValueError, match=r"unknown checkpoint format.*foo\.weight"):
        convert_checkpoint(src)
    sd = vit_state_dict()
    sd.update(**{'fc_norm.weight': torch.randn(48), 'fc_norm.bias': torch.randn(48),
                 'head.weight': torch.randn(5, 48), 'head.bias': torch.randn(5),
                 'blocks.0.attn.rel_pos_bias.table': torch.zeros(3)})
    with pytest.raises(ValueError, match=r'rel_pos_bias\.table is not part of an EVA-01 block'):
        convert_checkpoint(save(sd, tmp_path / 'y.pt'))  # a near miss, named
    sd.pop('blocks.0.attn.rel_pos_bias.table')
    sd['stray.weight'] = torch.zeros(3)
    with pytest.raises(ValueError, match='unknown checkpoint format'):
        convert_checkpoint(save(sd, tmp_path / 'y.pt'))
    with pytest.raises(KeyError, match='no mapping'):  # forced: every tensor must still map
        convert_checkpoint(save(sd, tmp_path / 'y.pt'), format='eva01-cls')
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        convert_checkpoint(str(tmp_path / 'missing.pt'))


@pytest.mark.slow  # a fresh Python imports the whole stack; run_cli covers main() in-process
def test_cli_writes_loadable_file(tmp_path):
    sd = vit_state_dict()
    sd.update(**{'fc_norm.weight': torch.randn(48), 'fc_norm.bias': torch.randn(48),
                 'head.weight': torch.randn(5, 48), 'head.bias': torch.randn(5)})
    src = save({'model': sd}, tmp_path / 'cls.pt')
    dst = tmp_path / 'out' / 'cls_mm.pth'
    res = subprocess.run([sys.executable, osp.join(ROOT, 'tools/model_converters/eva_to_mm.py'),
                          src, str(dst)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert 'eva01-cls' in res.stdout
    ckpt = torch.load(dst, weights_only=True)
    assert set(ckpt) == {'state_dict', 'meta'}
    assert all(k.startswith(('backbone.', 'head.')) for k in ckpt['state_dict'])


# ---------------------------------------------------------------- parity with timm
def _timm_eva(num_classes, global_pool):
    from timm.models.eva import Eva
    torch.manual_seed(0)
    m = Eva(img_size=56, patch_size=14, embed_dim=48, depth=2, num_heads=3,
            mlp_ratio=131 / 48, num_classes=num_classes, global_pool=global_pool)
    randomize(m, 0.05, seed=None)  # non-trivial values everywhere (timm zero-inits some)
    return m.eval()


def test_timm_forward_features_parity(tmp_path):
    timm_model = _timm_eva(num_classes=0, global_pool='token')
    assert timm_model.blocks[0].mlp.fc1.out_features == 131  # odd MLP ratio like 6144/1408
    src = save({'model': timm_model.state_dict()}, tmp_path / 'timm_eva.pt')
    conv = convert_checkpoint(src)['state_dict']
    ours = EVAViT(ARCH, img_size=56, out_type='raw', final_norm=True).eval()
    ours.load_state_dict({k[len('backbone.'):]: v for k, v in conv.items()}, strict=True)
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], timm_model.forward_features(x),
                                   rtol=0, atol=1e-5)


def test_timm_classification_logits_parity(tmp_path):
    timm_model = _timm_eva(num_classes=7, global_pool='avg')
    src = save({'model': timm_model.state_dict()}, tmp_path / 'timm_cls.pt')
    conv = convert_checkpoint(src)['state_dict']
    ours = classifier(num_classes=7).eval()
    ours.load_state_dict(conv, strict=True)
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, mode='tensor'), timm_model(x), rtol=0, atol=1e-5)


def test_mmpretrain_beit_eva_parity(tmp_path):
    torch.manual_seed(0)
    beit = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='BEiTViT', img_size=56, patch_size=14,
                      arch=dict(embed_dims=48, num_layers=2, num_heads=3,
                                feedforward_channels=131),
                      layer_scale_init_value=0.0, use_abs_pos_emb=True, use_rel_pos_bias=False,
                      use_shared_rel_pos_bias=False, out_type='avg_featmap'),
        head=dict(type='LinearClsHead', num_classes=5, in_channels=48))).eval()
    randomize(beit, 0.05, seed=None)
    src = save({'state_dict': beit.state_dict(), 'meta': {}}, tmp_path / 'beit-g-p14.pth')
    out = convert_checkpoint(src)
    assert out['meta']['source_format'] == 'mmpretrain-beit-eva'
    ours = classifier().eval()
    ours.load_state_dict(out['state_dict'], strict=True)
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, mode='tensor'), beit(x, mode='tensor'),
                                   rtol=0, atol=1e-5)


def test_format_detection_is_unambiguous():
    sd = vit_state_dict()
    head = {'head.weight': torch.randn(5, 48), 'head.bias': torch.randn(5)}
    fcn = {'fc_norm.weight': torch.ones(48), 'fc_norm.bias': torch.zeros(48)}
    norm = {'norm.weight': torch.ones(48), 'norm.bias': torch.zeros(48)}
    lm = {'lm_head.weight': torch.randn(8, 48), 'lm_head.bias': torch.zeros(8)}
    assert detect_format({**sd, **norm, **lm}).name == 'eva01-mim'
    assert detect_format({**sd, **fcn, **head}).name == 'eva01-cls'
    assert detect_format(sd | norm).name == 'eva-clip-vision'  # a tower without projection
    visual = {'visual.' + k: v for k, v in (sd | norm | head).items()}
    assert detect_format(visual).name == 'eva-clip-vision'
    # a 1024-class mean-pooled classifier is a classifier (the old 1024-row rule misread it)
    wide = {'head.weight': torch.randn(1024, 48), 'head.bias': torch.zeros(1024)}
    assert detect_format({**sd, **fcn, **wide}).name == 'eva01-cls'
    # norm + head is both a cls-token classifier and EVA-CLIP's tower with its projection:
    # the tensors cannot tell, so the user chooses
    for h in (head, wide):
        with pytest.raises(ValueError, match=r"ambiguous.*'eva01-cls', 'eva-clip-vision'.*--format"):
            detect_format({**sd, **norm, **h})
        assert detect_format({**sd, **norm, **h}, 'eva-clip-vision').name == 'eva-clip-vision'
    with pytest.raises(ValueError, match=r"unknown format name 'eva-cls'.*'eva01-cls'"):
        detect_format(sd, 'eva-cls')
    # shapes count: a head of the wrong width, a truncated block, an lm_head of another width
    with pytest.raises(ValueError, match='unknown checkpoint format'):
        detect_format({**sd, **fcn, 'head.weight': torch.randn(5, 40), 'head.bias': torch.randn(5)})
    with pytest.raises(ValueError, match=r'blocks\.1 lacks \[.mlp\.fc2\.bias.\]'):
        detect_format({k: v for k, v in (sd | fcn | head).items() if k != 'blocks.1.mlp.fc2.bias'})


def _timm_eva02(**kw):
    from timm.models.eva import Eva
    torch.manual_seed(0)
    cfg = dict(img_size=56, patch_size=14, embed_dim=48, depth=2, num_heads=3,
               mlp_ratio=4 * 2 / 3, swiglu_mlp=True, use_rot_pos_emb=True, ref_feat_shape=(4, 4),
               num_classes=0)
    cfg.update(kw)
    return Eva(**cfg)


@pytest.mark.parametrize('kw', [dict(), dict(scale_mlp=True, num_classes=5, global_pool='avg')])
def test_timm_eva02_is_not_taken_for_eva01(tmp_path, kw):
    """timm's EVA-02 (``eva02_tiny_patch14_224`` layout: fused SwiGLU ``fc1`` of twice the
    hidden width, RoPE, optionally sub-LN) has EVA-01's key names; it used to be written out
    as an EVA-01 classifier (exit 0)."""
    m = _timm_eva02(**kw)
    sd = m.state_dict()
    if 'blocks.0.mlp.fc1.weight' in sd:  # fused SwiGLU (else timm's sub-LN SwiGLU: fc1_g/fc1_x)
        assert sd['blocks.0.mlp.fc1.weight'].shape[0] == 2 * sd['blocks.0.mlp.fc2.weight'].shape[1]
    src = save({'model': sd}, tmp_path / 'eva02_tiny_patch14_224.pt')
    try:
        fmt = detect_format(sd)
    except ValueError as e:  # refused, saying why
        assert 'unknown checkpoint format' in str(e) and 'EVA-02' in str(e), e
        code, _, err = run_cli(src, tmp_path / 'out.pth')
        assert code != 0 and 'EVA-02' in err and 'eva02_tiny' in err
        assert not (tmp_path / 'out.pth').exists()
    else:  # an EVA-02 converter (converters/eva02*.py) may claim it, an EVA-01 one never
        assert 'eva02' in fmt.name.lower(), fmt.name
    for name in ('eva01-cls', 'eva01-mim', 'eva-clip-vision', 'own-run'):
        assert not get_format(name).detect(sd)


def test_own_mim_run_to_patch_16_backbone(tmp_path):
    """A checkpoint of this project's MIM pretraining (mmengine runner layout) converts to a
    patch-16 backbone for detection / segmentation, heads dropped, as EVA-01 did with
    eva_psz14.pt; the official segmentation release (also ``backbone.blocks``) is not
    mistaken for it."""
    mim = MODELS.build(dict(
        type='EVAMIM',
        backbone=dict(type='EVAViT', arch=ARCH, img_size=112, out_type='raw', final_norm=True,
                      with_mask_token=True),
        head=dict(type='EVAMIMHead', in_channels=48, out_channels=16),
        teacher=CLIPVisionTower(arch=dict(width=16, layers=1, heads=2, patch_size=14,
                                          image_size=112, output_dim=16))))
    sd = mim.state_dict()
    src = save({'meta': {}, 'state_dict': sd, 'optimizer': {}}, tmp_path / 'epoch_8.pth')
    out = convert_checkpoint(src, patch_size=16)
    assert out['meta']['source_format'] == 'own-run'
    conv = out['state_dict']
    assert sorted(conv) == sorted(k for k in sd if k.startswith('backbone.'))
    torch.testing.assert_close(conv['backbone.patch_embed.proj.weight'], F.interpolate(
        sd['backbone.patch_embed.proj.weight'], size=(16, 16), mode='bicubic',
        align_corners=False))
    assert conv['backbone.pos_embed'].shape == (1, 1 + 7 * 7, 48)
    det = EVAViT(ARCH, img_size=128, patch_size=16, pos_embed_size=112, out_type='featmap',
                 final_norm=False, with_cls_token=False, window_size=4, use_rel_pos=True)
    missing, unexpected = det.load_state_dict(
        {k[len('backbone.'):]: v for k, v in conv.items()}, strict=False)
    assert sorted(unexpected) == ['cls_token', 'mask_token', 'norm.bias', 'norm.weight']
    assert all('rel_pos' in k for k in missing)  # new, zero-initialised in ViTDet
    assert det(torch.randn(1, 3, 128, 128))[0].shape == (1, 48, 8, 8)
    seg_like = dict(sd, **{'decode_head.conv_seg.weight': torch.zeros(1)})
    with pytest.raises(ValueError, match='unknown checkpoint format'):
        detect_format(seg_like)  # not taken (and half-converted) as one of our runs


# ---------------------------------------------------------------- release files, as released
def beit_container(sd, **extra):
    """BEiT / MAE ``save_model``: what EVA-01's MIM, classification and linear-probe scripts
    write (``args`` is an argparse.Namespace)."""
    import argparse
    return dict(model=sd, optimizer={'state': {}, 'param_groups': [{'lr': 1e-4, 'params': [0]}]},
                epoch=59, scaler={'scale': 65536.0, '_growth_tracker': 3},
                args=argparse.Namespace(model='eva_g_patch14', input_size=224, lr=1e-4,
                                        layer_decay=0.85, betas=(0.9, 0.98), output_dir='/out',
                                        resume='', nb_classes=21841), **extra)


def linprobe_state_dict(num_classes=5):
    sd = vit_state_dict()
    sd.update(**{'norm.weight': torch.rand(48) + 0.5, 'norm.bias': torch.randn(48) * 0.1,
                 'head.0.running_mean': torch.randn(48) * 0.1,
                 'head.0.running_var': torch.rand(48) + 0.5,
                 'head.0.num_batches_tracked': torch.tensor(112590),
                 'head.1.weight': torch.randn(num_classes, 48) * 0.1,
                 'head.1.bias': torch.randn(num_classes) * 0.1})
    return sd


def test_eva_clip_linear_probe_release(tmp_path):
    """``eva_clip_vis_enc_sz224_lincls_86p5.pth``: the vision encoder + ``head =
    Sequential(BatchNorm1d(affine=False), Linear)`` (``head.0`` running stats only) in MAE's
    linear-probe container -> our linear-probe classifier, logits equal to the official
    computation (cls token after the final norm -> BN with running stats -> Linear)."""
    from timm.models.eva import Eva
    sd = linprobe_state_dict()
    src = save(beit_container(sd), tmp_path / 'eva_clip_vis_enc_sz224_lincls_86p5.pth')
    out = convert_checkpoint(src)
    assert out['meta']['source_format'] == 'eva-clip-linprobe'
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='EVAViT', arch=ARCH, img_size=56, out_type='cls_token',
                      final_norm=True),
        head=dict(type='EVALinearProbeHead', num_classes=5, in_channels=48))).eval()
    assert_all_landed(model, sd, out['state_dict'])
    assert model.head.bn.num_batches_tracked.item() == 112590
    # the official model: an EVA-01 ViT (timm Eva has its layout) pooling the normed cls token
    ref = Eva(img_size=56, patch_size=14, embed_dim=48, depth=2, num_heads=3,
              mlp_ratio=131 / 48, num_classes=0, global_pool='token').eval()
    ref.load_state_dict({k: v for k, v in sd.items() if not k.startswith('head.')})
    x = torch.randn(3, 3, 56, 56)
    with torch.no_grad():
        feat = ref(x)
        bn = F.batch_norm(feat, sd['head.0.running_mean'], sd['head.0.running_var'],
                          training=False, eps=1e-6)
        expected = F.linear(bn, sd['head.1.weight'], sd['head.1.bias'])
        torch.testing.assert_close(model(x, mode='tensor'), expected, rtol=1e-5, atol=1e-5)
    # an affine BatchNorm is another head: not this format
    affine = dict(sd, **{'head.0.weight': torch.ones(48), 'head.0.bias': torch.zeros(48)})
    with pytest.raises(ValueError, match='unknown checkpoint format'):
        detect_format(affine)


@pytest.mark.parametrize('release', [
    'eva_psz14.pt', 'eva_psz14to16.pt', 'eva_21k_224px_psz14.pt',
    'eva_21k_1k_336px_psz14_ema_89p6.pt', 'eva_clip_psz14_vision_enc.pt',
    'eva_clip_vis_enc_sz336_lincls_86p5.pth'])
def test_readme_release_files_convert(tmp_path, release):
    """Each file of the conversion table (docs/converters.md), in its container and dtype,
    converts with the command given there and loads strictly into the model it is for."""
    norm = {'norm.weight': torch.randn(48), 'norm.bias': torch.randn(48)}
    fcn = {'fc_norm.weight': torch.randn(48), 'fc_norm.bias': torch.randn(48)}
    options, expected = {}, None
    if release.startswith('eva_psz14'):  # DeepSpeed fp16 MIM: {'model': sd}
        sd = vit_state_dict(patch_size=16 if 'to16' in release else 14)
        sd.update(norm, mask_token=torch.randn(1, 1, 48), **{
            'lm_head.weight': torch.randn(16, 48), 'lm_head.bias': torch.randn(16)})
        sd = {k: v.half() for k, v in sd.items()}
        obj, expected = {'model': sd}, 'eva01-mim'
    elif release.startswith('eva_21k_224'):  # IN-21K intermediate, fp16, BEiT container
        sd = vit_state_dict()
        sd.update(fcn, **{'head.weight': torch.randn(21, 48), 'head.bias': torch.randn(21)})
        sd = {k: v.half() for k, v in sd.items()}
        obj, expected = beit_container(sd), 'eva01-cls'
    elif release.startswith('eva_21k_1k'):  # fp32 EMA under 'model' (+ 'model_ema')
        sd = vit_state_dict()
        sd.update(fcn, **{'head.weight': torch.randn(7, 48), 'head.bias': torch.randn(7)})
        obj, expected = beit_container(sd, model_ema=dict(sd)), 'eva01-cls'
    elif release == 'eva_clip_psz14_vision_enc.pt':  # fp16 tower with its 1024-d projection
        sd = vit_state_dict()
        sd.update(norm, **{'head.weight': torch.randn(1024, 48), 'head.bias': torch.randn(1024)})
        sd = {k: v.half() for k, v in sd.items()}
        obj, expected = {'module': sd}, 'eva-clip-vision'
        options['format'] = 'eva-clip-vision'  # norm + head: the README passes --format
    else:
        sd = linprobe_state_dict(num_classes=9)
        obj, expected = beit_container(sd), 'eva-clip-linprobe'
    src = save(obj, tmp_path / release)
    out = convert_checkpoint(src, **options)
    assert out['meta']['source_format'] == expected
    conv = out['state_dict']
    assert all(v.dtype == torch.float32 for k, v in conv.items() if 'num_batches' not in k)
    assert len(conv) == len(sd)
    for k, v in sd.items():  # every source tensor lands once, unchanged but for the dtype
        assert any(torch.equal(v.float(), c.float()) and c.shape == v.shape
                   for c in conv.values()), k
    if expected == 'eva-clip-vision':
        with pytest.raises(ValueError, match='ambiguous'):
            convert_checkpoint(src)


def test_video_release_container_with_config_object(tmp_path, tiny_arch):
    """``eva_video_k*.pth`` (Swin-style ``save_checkpoint``) holds ``'config'``, a yacs
    ``CfgNode`` (a dict subclass): it is read as plain data, yacs is never imported."""
    import sys as _sys
    import types
    from test_video import _official_video_sd
    sd = _official_video_sd(tiny_arch, frames=8, classes=7)

    class CfgNode(dict):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.__dict__['__immutable__'] = False
            self.__dict__['__deprecated_keys__'] = set()

    CfgNode.__module__, CfgNode.__qualname__ = 'yacs.config', 'CfgNode'
    yacs, config = types.ModuleType('yacs'), types.ModuleType('yacs.config')
    config.CfgNode = CfgNode
    _sys.modules.update({'yacs': yacs, 'yacs.config': config})
    try:
        cfg = CfgNode(MODEL=CfgNode(TYPE='eva', NUM_CLASSES=722), TRAIN=CfgNode(EPOCHS=40))
        src = save({'model': {k: v.half() for k, v in sd.items()}, 'optimizer': {},
                    'lr_scheduler': {'last_epoch': 39}, 'max_accuracy': 84.9, 'epoch': 39,
                    'amp': {'loss_scaler0': {'loss_scale': 65536.0}}, 'config': cfg},
                   tmp_path / 'eva_video_k722.pth')
    finally:
        del _sys.modules['yacs'], _sys.modules['yacs.config']
    out = convert_checkpoint(src)
    assert out['meta']['source_format'] == 'eva01-video' and len(out['state_dict']) == len(sd)


def test_load_weights_refuses_code_and_names_the_type(tmp_path):
    import collections
    from projects.eva.loader import load_weights
    path = save({'model': {'x': torch.ones(1)}, 'hook': collections.Counter(a=1),
                 'fn': F.relu}, tmp_path / 'with_code.pth')
    with pytest.raises(RuntimeError, match=r"with_code\.pth: it pickles \[.*relu.*weights_only"):
        load_weights(path)


def run_cli(*args):
    """The converter's ``main`` in this process (a subprocess per case costs a full import of
    the stack): (exit code, stdout, stderr)."""
    import contextlib
    import importlib.util
    import io
    spec = importlib.util.spec_from_file_location(
        'eva_to_mm', osp.join(ROOT, 'tools/model_converters/eva_to_mm.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main([str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
            if not isinstance(e.code, int) and e.code is not None:
                err.write(str(e.code))
    return code, out.getvalue(), err.getvalue()


def test_cli_refuses_bad_paths_and_non_checkpoints(tmp_path):
    """Issue 14 item 6: the input as output (it replaced a training checkpoint), an existing
    folder (left a .tmp behind), empty and text files (bare EOFError / IndexError)."""
    sd = vit_state_dict()
    sd.update(**{'fc_norm.weight': torch.randn(48), 'fc_norm.bias': torch.randn(48),
                 'head.weight': torch.randn(5, 48), 'head.bias': torch.randn(5)})
    src = save({'model': sd}, tmp_path / 'epoch_3.pth')
    before = (tmp_path / 'epoch_3.pth').read_bytes()
    for dst in (src, str(tmp_path / '.' / 'epoch_3.pth')):
        code, _, err = run_cli(src, dst)
        assert code != 0 and 'is the input checkpoint' in err, err
    assert (tmp_path / 'epoch_3.pth').read_bytes() == before
    (tmp_path / 'out').mkdir()
    code, _, err = run_cli(src, tmp_path / 'out')
    assert code != 0 and 'is an existing folder' in err
    assert list((tmp_path / 'out').iterdir()) == [] and \
        not [p for p in tmp_path.iterdir() if p.name.endswith('.tmp')]
    (tmp_path / 'empty.pth').write_bytes(b'')
    (tmp_path / 'notes.pth').write_text('eva weights: see the README\n')
    for name, msg in (('empty.pth', 'empty file'), ('notes.pth', 'not a PyTorch checkpoint')):
        code, _, err = run_cli(tmp_path / name, tmp_path / 'x.pth')
        assert code != 0 and msg in err and name in err, err
    code, _, err = run_cli(src, tmp_path / 'x.pth', '--format', 'eva-cls')
    assert code == 2 and "known formats: ['eva01-mim'" in err
    assert not (tmp_path / 'x.pth').exists()
    code, out, _ = run_cli(src, tmp_path / 'x.pth', '--format', 'eva01-cls')
    assert code == 0 and 'eva01-cls' in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ['empty.pth', 'epoch_3.pth', 'notes.pth',
                                                          'out', 'x.pth']


def test_cli_failure_while_saving_leaves_nothing(tmp_path, monkeypatch):
    """A crash during ``torch.save`` (disk full, kill) leaves neither DST nor a temporary."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'eva_to_mm', osp.join(ROOT, 'tools/model_converters/eva_to_mm.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)

    def broken_save(obj, f):
        open(f, 'wb').write(b'partial')
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(cli.torch, 'save', broken_save)
    with pytest.raises(OSError, match='No space'):
        cli.save_atomic({'x': 1}, str(tmp_path / 'sub' / 'out.pth'))
    assert list((tmp_path / 'sub').iterdir()) == []


@pytest.mark.parametrize('umask, mode', [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_cli_output_has_the_users_umask(tmp_path, umask, mode):
    """mkstemp's temporary file is 0600: the converted checkpoint was unreadable to the
    user's group (a shared work dir) whatever the umask."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'eva_to_mm', osp.join(ROOT, 'tools/model_converters/eva_to_mm.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    old = os.umask(umask)
    try:
        cli.save_atomic({'x': 1}, str(tmp_path / 'out.pth'))
    finally:
        os.umask(old)
    assert oct(os.stat(tmp_path / 'out.pth').st_mode & 0o777) == oct(mode)


# ================================================================ EVA-02
TOL = dict(rtol=1e-5, atol=1e-5)
DIM, HEADS, HIDDEN = 64, 2, 170  # int(64 * 4 * 2/3); head dim 32 (RoPE needs % 4)


def arch(split: bool) -> dict:
    """EVA-02 B/L (split q/k/v, sub-LN SwiGLU) or Ti/S (fused) at reduced width."""
    if split:
        return dict(embed_dims=DIM, num_layers=2, num_heads=HEADS, feedforward_channels=HIDDEN,
                    mlp_type='swiglu', sub_ln=True, rope=True)
    return dict(embed_dims=DIM, num_layers=2, num_heads=HEADS, feedforward_channels=HIDDEN,
                mlp_type='swiglu_fused', rope=True)


def official_vit(split=True, grid=4, patch=14, cls=True, depth=2, seed=0, rope=('rope', )):
    """An asuka / det / seg EVA-02 ViT state dict: names and shapes as documented (not read
    off our model), with the persistent RoPE buffers (top level ``rope`` and per block
    ``attn.rope``; the det ViT names its ``rope_win`` / ``rope_glb``)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, base=0.):
        return base + torch.randn(*shape, generator=g) * 0.1

    d, h, hd = DIM, HIDDEN, DIM // HEADS
    sd = {'patch_embed.proj.weight': r(d, 3, patch, patch), 'patch_embed.proj.bias': r(d),
          'pos_embed': r(1, int(cls) + grid * grid, d)}
    if cls:
        sd['cls_token'] = r(1, 1, d)
    for name in rope:
        sd.update({f'{name}.freqs_cos': r(16, 16, hd), f'{name}.freqs_sin': r(16, 16, hd)})
    for i in range(depth):
        p = f'blocks.{i}.'
        sd.update({p + 'norm1.weight': r(d, base=1), p + 'norm1.bias': r(d),
                   p + 'norm2.weight': r(d, base=1), p + 'norm2.bias': r(d),
                   p + 'attn.q_bias': r(d), p + 'attn.v_bias': r(d),
                   p + 'attn.proj.weight': r(d, d), p + 'attn.proj.bias': r(d),
                   p + 'attn.rope.freqs_cos': r(16, 16, hd),
                   p + 'attn.rope.freqs_sin': r(16, 16, hd)})
        if split:
            sd.update({p + 'attn.q_proj.weight': r(d, d), p + 'attn.k_proj.weight': r(d, d),
                       p + 'attn.v_proj.weight': r(d, d),
                       p + 'mlp.w1.weight': r(h, d), p + 'mlp.w1.bias': r(h),
                       p + 'mlp.w2.weight': r(h, d), p + 'mlp.w2.bias': r(h),
                       p + 'mlp.ffn_ln.weight': r(h, base=1), p + 'mlp.ffn_ln.bias': r(h),
                       p + 'mlp.w3.weight': r(d, h), p + 'mlp.w3.bias': r(d)})
        else:
            sd.update({p + 'attn.qkv.weight': r(3 * d, d),
                       p + 'mlp.w12.weight': r(2 * h, d), p + 'mlp.w12.bias': r(2 * h),
                       p + 'mlp.w3.weight': r(d, h), p + 'mlp.w3.bias': r(d)})
    return sd


def mim_state_dict(split=True, **kw):
    g = torch.Generator().manual_seed(7)
    sd = official_vit(split, **kw)
    sd.update({'mask_token': torch.randn(1, 1, DIM, generator=g),
               'norm.weight': 1 + 0.1 * torch.randn(DIM, generator=g),
               'norm.bias': 0.1 * torch.randn(DIM, generator=g),
               'lm_head.weight': 0.1 * torch.randn(32, DIM, generator=g),  # 1024 in the release
               'lm_head.bias': 0.1 * torch.randn(32, generator=g)})
    return sd


def cls_state_dict(split=True, classes=5, seed=0, **kw):
    g = torch.Generator().manual_seed(seed + 11)
    sd = official_vit(split, seed=seed, **kw)
    sd.update({'fc_norm.weight': 1 + 0.1 * torch.randn(DIM, generator=g),
               'fc_norm.bias': 0.1 * torch.randn(DIM, generator=g),
               'head.weight': 0.1 * torch.randn(classes, DIM, generator=g),
               'head.bias': 0.1 * torch.randn(classes, generator=g)})
    return sd


def n_rope(sd):
    return sum('rope' in k for k in sd)


def deepspeed_container(sd, **client_state):
    """What DeepSpeed's ``save_checkpoint`` writes (asuka's MIM and classification runs):
    the weights under ``module`` beside the engine's own state and the client state."""
    import collections
    shapes = collections.OrderedDict((k, v.shape) for k, v in sd.items())
    return dict(module=sd, buffer_names=[], optimizer=None, param_shapes=[shapes],
                frozen_param_shapes=None, shared_params={}, frozen_param_fragments=None,
                lr_scheduler=None, data_sampler=None, random_ltd=None,
                sparse_tensor_module_names=set(), skipped_steps=0, global_steps=1000,
                global_samples=2048000, dp_world_size=64, mp_world_size=1,
                ds_config={'train_batch_size': 2048, 'fp16': {'enabled': True}},
                ds_version='0.8.0', **client_state)


def timm_eva02(split, img_size=56, **kw):
    name = 'eva02_base_patch14_224' if split else 'eva02_tiny_patch14_224'
    return timm.create_model(name, pretrained=False, img_size=img_size, depth=2, embed_dim=DIM,
                             num_heads=HEADS, **kw).eval()


def mim_model(split, img_size=56, patch_size=14):
    return MODELS.build(dict(
        type='EVAMIM',
        backbone=dict(type='EVAViT', arch=arch(split), img_size=img_size, patch_size=patch_size,
                      out_type='raw', final_norm=True, with_mask_token=True),
        head=dict(type='EVAMIMHead', in_channels=DIM, out_channels=32),
        teacher=CLIPVisionTower(arch=dict(width=16, layers=1, heads=2, patch_size=14,
                                          image_size=img_size, output_dim=32)))).eval()


def classifier02(split, img_size=56, classes=5):
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='EVAViT', arch=arch(split), img_size=img_size, patch_size=14,
                      out_type='avg_featmap', final_norm=False),
        head=dict(type='EVAClsHead', num_classes=classes, in_channels=DIM))).eval()


# ---------------------------------------------------------------- MIM
@pytest.mark.parametrize('split', [True, False], ids=['B-L', 'Ti-S'])
def test_official_mim_file_converts_and_matches_timm(tmp_path, split):
    """``eva02_{B,L}_pt_*_p14.pt`` (split q/k/v + sub-LN) and ``eva02_{Ti,S}_pt_in21k_p14.pt``
    (fused): DeepSpeed ``module``, fp16. -> EVAMIM strictly (mask token, final norm, lm_head
    as EVA-01's MIM), RoPE buffers dropped and said so; the encoder equals timm's eva02 fed
    the same file through timm's own checkpoint_filter_fn (which moves MIM's norm to its
    fc_norm)."""
    from timm.models.eva import checkpoint_filter_fn
    sd = {k: v.half() for k, v in mim_state_dict(split).items()}
    src = save(deepspeed_container(sd, epoch=149), tmp_path / 'eva02_pt_p14.pt')
    out = convert_checkpoint(src)
    assert out['meta']['source_format'] == 'eva02-mim'
    assert out['meta']['weights'] == 'module'
    conv = out['state_dict']
    assert len(conv) == len(sd) - n_rope(sd) and not any('rope' in k for k in conv)
    assert list(out['meta']['dropped']) == [f'{n_rope(sd)} RoPE tables (*rope*.freqs_cos/sin)']
    ours = mim_model(split)
    ours.load_state_dict(conv, strict=True)
    torch.testing.assert_close(ours.head.lm_head.weight, sd['lm_head.weight'].float())
    torch.testing.assert_close(ours.backbone.mask_token, sd['mask_token'].float())
    ref = timm_eva02(split, num_classes=0)
    ref.load_state_dict(checkpoint_filter_fn({k: v.float() for k, v in sd.items()}, ref))
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        torch.testing.assert_close(ours.backbone.forward_features(x),
                                   ref.fc_norm(ref.forward_features(x)), **TOL)


def test_official_p14to16_file_and_patch_size_option(tmp_path):
    """``eva02_*_p14to16.pt`` is what ``interpolate_patch_14to16.py`` writes: the raw dict,
    the kernel bicubic-resized to 16 (fp32), the table 8x8 -> 7x7 (here 112 px). It
    converts as it is; ``--patch-size 16`` on the p14 file gives the same tensors."""
    sd14 = mim_state_dict(grid=8)
    sd16 = dict(sd14)
    sd16['patch_embed.proj.weight'] = F.interpolate(sd14['patch_embed.proj.weight'],
                                                    size=(16, 16), mode='bicubic',
                                                    align_corners=False)
    grid = sd14['pos_embed'][:, 1:].reshape(1, 8, 8, DIM).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(7, 7), mode='bicubic', align_corners=False)
    sd16['pos_embed'] = torch.cat([sd14['pos_embed'][:, :1],
                                   grid.permute(0, 2, 3, 1).reshape(1, 49, DIM)], dim=1)
    official = convert_checkpoint(save(sd16, tmp_path / 'eva02_B_pt_in21k_p14to16.pt'))
    assert official['meta']['source_format'] == 'eva02-mim'
    ours = convert_checkpoint(save({'module': sd14}, tmp_path / 'p14.pt'), patch_size=16)
    assert official['state_dict'].keys() == ours['state_dict'].keys()
    for k, v in official['state_dict'].items():
        torch.testing.assert_close(ours['state_dict'][k], v, msg=k)
    mim_model(True, img_size=112, patch_size=16).load_state_dict(official['state_dict'],
                                                                 strict=True)


def test_official_mim_file_initialises_the_video_recipe(tmp_path):
    """The own-data video recipe (``configs/custom/eva02-b-p14_custom-video.py``) starts from
    ``eva02_B_pt_in21k_p14.pt`` through its ``init_cfg``, converted as the guide says: every
    encoder tensor lands, the 4x4 table is tiled over the 8 frames (cls slot kept), the RoPE
    tables are dropped, the patch embedding is frozen, and only fc_norm and the classifier
    start fresh."""
    from mmaction.registry import MODELS as ACTION_MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import projects.eva.video  # noqa: F401
    sd = mim_state_dict()
    src = save(deepspeed_container({k: v.half() for k, v in sd.items()}, epoch=149),
               tmp_path / 'eva02_B_pt_in21k_p14.pt')
    mm = save(convert_checkpoint(src), tmp_path / 'eva02_B_pt_in21k_p14_mm.pth')
    cfg = Config.fromfile(osp.join(ROOT, 'configs/custom/eva02-b-p14_custom-video.py'))
    assert cfg.model.backbone.init_cfg.checkpoint == \
        'checkpoints/eva02/eva02_B_pt_in21k_p14_mm.pth'
    cfg.model.backbone.update(arch=arch(True), img_size=56, init_cfg=dict(
        cfg.model.backbone.init_cfg, checkpoint=mm))
    cfg.model.cls_head.in_channels = DIM
    init_default_scope('mmaction')
    model = ACTION_MODELS.build(cfg.model)
    model.init_weights()
    got = model.backbone.state_dict()
    encoder = {k: v.half().float() for k, v in sd.items()  # the release is fp16
               if 'rope' not in k and k.split('.')[0] not in ('mask_token', 'norm', 'lm_head')}
    assert set(got) - set(encoder) == {'fc_norm.weight', 'fc_norm.bias'}
    for k, v in encoder.items():
        if k != 'pos_embed':
            torch.testing.assert_close(got[k], v, msg=k)
    pos = got['pos_embed'][0]  # (1 + 8 * 16, C)
    torch.testing.assert_close(pos[0], encoder['pos_embed'][0, 0])
    for t in range(8):
        torch.testing.assert_close(pos[1 + 16 * t:1 + 16 * (t + 1)], encoder['pos_embed'][0, 1:])
    assert not model.backbone.patch_embed.proj.weight.requires_grad
    assert model.backbone.rope_ref_size == (16, 16)  # 224 / 14, as pretrained
    with torch.no_grad():
        scores = model(torch.randn(1, 1, 3, 8, 56, 56), mode='tensor', stage='head')
    assert scores.shape == (1, 2)  # the template's two classes


# ---------------------------------------------------------------- classification
@pytest.mark.parametrize('split', [True, False], ids=['B-L', 'Ti-S'])
def test_official_classifier_prefers_ema_and_matches_timm(tmp_path, split):
    """``cls/in21k_to_in1k/*`` (DeepSpeed ``module`` + client state ``model_ema``): the EMA
    weights are taken, as timm does, and ``meta['weights']`` says so; ``ema=False`` takes
    the trained ones. Logits equal timm's on the same file, at its 56 px and at 84 px (our
    load hook and timm's filter resize the table the same way, bicubic without antialias)."""
    from timm.models.eva import checkpoint_filter_fn
    trained, ema = cls_state_dict(split, seed=0), cls_state_dict(split, seed=1)
    ckpt = deepspeed_container({k: v.half() for k, v in trained.items()}, epoch=19,
                               model_ema={k: v.half() for k, v in ema.items()})
    src = save(ckpt, tmp_path / 'eva02_L_pt_m38m_ft_in21k_to_in1k_p14.pt')
    out = convert_checkpoint(src)
    assert (out['meta']['source_format'], out['meta']['weights']) == ('eva02-cls', 'model_ema')
    assert len(out['state_dict']) == len(ema) - n_rope(ema)
    plain = convert_checkpoint(src, ema=False)
    assert plain['meta']['weights'] == 'module'
    torch.testing.assert_close(plain['state_dict']['head.fc.weight'],
                               trained['head.weight'].half().float())
    full = {k: v.float() for k, v in ckpt['model_ema'].items()}
    for size in (56, 84):
        ours = classifier02(split, img_size=size)
        ours.load_state_dict(out['state_dict'], strict=True)
        ref = timm_eva02(split, img_size=size, num_classes=5)
        ref.load_state_dict(checkpoint_filter_fn({'model_ema': full}, ref, antialias=False))
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            torch.testing.assert_close(ours(x, mode='tensor'), ref(x), **TOL)


def test_cli_says_which_weights(tmp_path):
    src = save({'module': cls_state_dict(), 'model_ema': cls_state_dict(seed=1)},
               tmp_path / 'cls.pt')
    code, out, _ = run_cli(src, tmp_path / 'a.pth')
    assert code == 0 and 'eva02-cls (model_ema weights)' in out and 'RoPE tables' in out
    code, out, _ = run_cli(src, tmp_path / 'b.pth', '--no-ema')
    assert code == 0 and '(module weights)' in out


# ---------------------------------------------------------------- detection
def _eva02_detector_cfg():
    """The EVA-01 ViTDet detector of test_detection with an EVA-02 B/L backbone (no
    rel-pos), as configs/detection/eva02-*."""
    from test_detection import _tiny_detector_cfg
    cfg = _tiny_detector_cfg()
    cfg.model.backbone.arch = dict(arch(True), num_layers=4)
    cfg.model.backbone.use_rel_pos = False
    cfg.model.neck.in_channels = DIM
    return cfg


def test_official_detectron2_file_with_ema_state(tmp_path):
    """``eva02_L_coco_det_sys_o365.pth`` layout: detectron2 ``model`` + ``ema_state`` (every
    parameter and buffer by name, incl. ``pixel_mean``/``pixel_std``); ``backbone.net`` is
    the official det ViT: B/L blocks, pos (1, 1 + N, D) with a cls slot, RoPE tables under
    ``rope_win`` / ``rope_glb`` and per block. The neck and heads are EVA-01's ViTDet ones.
    EMA weights are taken, the cls slot goes at load, every tensor lands."""
    from test_detection import _build, _to_detectron2_key
    cfg = _eva02_detector_cfg()
    ours = _build(cfg).state_dict()
    assert not any('rel_pos' in k for k in ours)

    def d2_state(seed):
        torch.manual_seed(seed)
        d2 = {f'backbone.net.{k}': v for k, v in official_vit(
            grid=4, patch=16, depth=4, seed=seed, rope=('rope_win', 'rope_glb')).items()
            if k != 'cls_token'}
        for k, v in ours.items():
            key = _to_detectron2_key(k)
            if key is not None and not key.startswith('backbone.net.'):
                d2[key] = torch.randn_like(v)
        d2['pixel_mean'] = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
        d2['pixel_std'] = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
        return d2

    trained, ema = d2_state(1), d2_state(2)
    assert trained['backbone.net.pos_embed'].shape == (1, 17, DIM)
    src = save({'model': {k: v.half() for k, v in trained.items() if 'pixel' not in k},
                'ema_state': ema, 'iteration': 40000}, tmp_path / 'eva02_L_coco_det_sys_o365.pth')
    out = convert_checkpoint(src)
    assert (out['meta']['source_format'], out['meta']['weights']) == ('eva02-det', 'ema_state')
    fresh = _build(cfg)
    fresh.load_state_dict(out['state_dict'], strict=True)
    loaded = fresh.state_dict()
    torch.testing.assert_close(loaded['backbone.pos_embed'], ema['backbone.net.pos_embed'][:, 1:])
    torch.testing.assert_close(loaded['backbone.blocks.3.mlp.ffn_ln.weight'],
                               ema['backbone.net.blocks.3.mlp.ffn_ln.weight'])
    torch.testing.assert_close(loaded['roi_head.mask_head.2.conv_logits.weight'],
                               ema['roi_heads.mask_head.predictor.weight'])
    with torch.no_grad():
        fresh.eval()
        feats = fresh.extract_feat(torch.randn(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2, 1]
    assert convert_checkpoint(src, ema=False)['meta']['weights'] == 'model'
    # an EVA-01 ViTDet table in an EVA-02 block is not this release: refused by name
    bad = dict(trained, **{'backbone.net.blocks.1.attn.rel_pos_h': torch.zeros(7, 32)})
    with pytest.raises(ValueError, match=r'blocks\.1\.attn\.rel_pos_h is not part of an EVA-02'):
        convert_checkpoint(save({'model': bad}, tmp_path / 'bad.pth'))


# ---------------------------------------------------------------- segmentation
def _upernet(size=64):
    from mmengine.config import Config
    from mmseg.registry import MODELS as SEG_MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs/segmentation/eva02-b-p16_upernet_4xb8-60k_ade20k-512x512.py'))
    cfg.model.backbone.update(arch=dict(arch(True), num_layers=4), img_size=size,
                              out_indices=[0, 1, 2, 3], init_cfg=None)
    cfg.model.neck.embed_dim = DIM
    cfg.model.decode_head.update(in_channels=[DIM] * 4, channels=16)
    cfg.model.auxiliary_head.update(in_channels=DIM, channels=8)
    cfg.model.data_preprocessor.size = (size, size)
    torch.manual_seed(0)
    return SEG_MODELS.build(cfg.model)


def test_official_mmseg_upernet_file(tmp_path):
    """``eva02_B_ade_seg_upernet_sz512.pth``: mmseg 0.x ``state_dict`` with ``backbone.*``
    (cls token, pos (1, 1 + N, D), RoPE buffers, B/L blocks), the backbone's ``fpn1``
    (ConvT, SyncBN, GELU, ConvT) and ``fpn2`` (ConvT), ``decode_head.*`` (UPerHead) and
    ``auxiliary_head.*`` (FCNHead) -> our EVAEncoderDecoder with EVAViT + Feature2Pyramid."""
    model = _upernet()
    ours = model.state_dict()
    g = torch.Generator().manual_seed(5)
    sd = {f'backbone.{k}': v for k, v in official_vit(grid=4, patch=16, depth=4).items()}
    for i in (0, 3):
        sd[f'backbone.fpn1.{i}.weight'] = torch.randn(DIM, DIM, 2, 2, generator=g)
        sd[f'backbone.fpn1.{i}.bias'] = torch.randn(DIM, generator=g)
    sd.update({'backbone.fpn1.1.weight': torch.rand(DIM, generator=g) + 0.5,
               'backbone.fpn1.1.bias': torch.randn(DIM, generator=g),
               'backbone.fpn1.1.running_mean': torch.randn(DIM, generator=g),
               'backbone.fpn1.1.running_var': torch.rand(DIM, generator=g) + 0.5,
               'backbone.fpn1.1.num_batches_tracked': torch.tensor(80000),
               'backbone.fpn2.0.weight': torch.randn(DIM, DIM, 2, 2, generator=g),
               'backbone.fpn2.0.bias': torch.randn(DIM, generator=g)})
    # mmseg 0.x and 1.x name UPerHead / FCNHead tensors alike (ConvModule conv/bn, conv_seg)
    heads = {k: torch.randn(v.shape, generator=g).to(v.dtype) if v.is_floating_point() else v
             for k, v in ours.items() if k.startswith(('decode_head.', 'auxiliary_head.'))}
    assert 'decode_head.psp_modules.3.1.conv.weight' in heads
    assert 'auxiliary_head.convs.0.bn.running_var' in heads and 'decode_head.conv_seg.bias' in heads
    sd.update(heads)
    src = save({'meta': {'mmseg_version': '0.29.1'},
                'state_dict': {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}},
               tmp_path / 'eva02_B_ade_seg_upernet_sz512.pth')
    out = convert_checkpoint(src)
    assert out['meta']['source_format'] == 'eva02-seg-upernet'
    conv = out['state_dict']
    assert len(conv) == len(sd) - n_rope(sd) == len(ours)
    model.load_state_dict(conv, strict=True)
    got = model.state_dict()
    torch.testing.assert_close(got['neck.upsample_4x.3.weight'],
                               sd['backbone.fpn1.3.weight'].half().float())
    torch.testing.assert_close(got['neck.upsample_4x.1.running_var'],
                               sd['backbone.fpn1.1.running_var'].half().float())
    torch.testing.assert_close(got['backbone.blocks.1.attn.k_proj.weight'],
                               sd['backbone.blocks.1.attn.k_proj.weight'].half().float())
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]
    bad = dict(sd, **{'backbone.fpn3.0.weight': torch.zeros(1)})
    with pytest.raises(KeyError, match=r"no mapping: \['backbone\.fpn3\.0\.weight'\]"):
        convert_checkpoint(save({'state_dict': bad}, tmp_path / 'bad.pth'))


# ---------------------------------------------------------------- files, names, look-alikes
def test_safetensors_file_converts_like_torch_save(tmp_path):
    """timm / HF hub ``model.safetensors``: read with safetensors (no pickle)."""
    from safetensors.torch import save_file
    sd = {k: v.contiguous() for k, v in timm_eva02(False, num_classes=3).state_dict().items()}
    save_file(sd, str(tmp_path / 'model.safetensors'))
    a = convert_checkpoint(str(tmp_path / 'model.safetensors'))
    b = convert_checkpoint(save(sd, tmp_path / 'model.pth'))
    assert a['meta']['source_format'] == 'timm-eva02' and a['state_dict'].keys() == b['state_dict'].keys()
    assert all(torch.equal(v, b['state_dict'][k]) for k, v in a['state_dict'].items())
    raw = (tmp_path / 'model.safetensors').read_bytes()
    (tmp_path / 'cut.safetensors').write_bytes(raw[:len(raw) // 2])
    with pytest.raises(ValueError, match=r'cut\.safetensors \(safetensors\)'):
        convert_checkpoint(str(tmp_path / 'cut.safetensors'))


def test_format_names_have_no_spaces_and_old_names_still_work(tmp_path):
    """``--format`` takes short ids only (aliases too: a description is not a name); the
    renamed EVA-02 run format keeps its old id."""
    assert all(' ' not in n for n in format_names(aliases=True))
    assert get_format('own-run-eva02').name == 'own-run'
    with pytest.raises(ValueError, match='unknown format name'):
        get_format('timm eva02_* (classifiers, MIM encoders, *_clip vision towers)')
    src = save(timm_eva02(True, num_classes=3).state_dict(), tmp_path / 'timm.pth')
    code, out, _ = run_cli(src, tmp_path / 'x.pth', '--format', 'timm-eva02')
    assert code == 0 and 'timm-eva02' in out


def test_look_alikes_are_refused():
    """Each EVA-02 format takes its own layout only: official vs timm names, MIM vs
    classifier, a CLIP tower's inner_attn_ln, an incomplete block, EVA-01 blocks."""
    mim, cls = mim_state_dict(), cls_state_dict(split=False)
    assert detect_format(mim).name == 'eva02-mim' and detect_format(cls).name == 'eva02-cls'
    timm_sd = timm_eva02(True, num_classes=3).state_dict()
    assert detect_format(timm_sd).name == 'timm-eva02'
    for name in ('eva02-mim', 'eva02-cls'):
        assert not get_format(name).detect(timm_sd)
    for name in ('eva01-mim', 'eva01-cls', 'timm-eva02', 'eva-clip-vision', 'own-run'):
        assert not get_format(name).detect(mim) and not get_format(name).detect(cls), name
    clip_like = dict(mim, **{f'blocks.{i}.attn.inner_attn_ln.{p}': torch.ones(DIM)
                             for i in range(2) for p in ('weight', 'bias')})
    with pytest.raises(ValueError, match=r'inner_attn_ln\.\w+ is not part of an EVA-02 B/L '
                                         r'block \(an EVA-02-CLIP tower'):
        detect_format(clip_like)
    lacking = {k: v for k, v in mim.items() if k != 'blocks.1.mlp.ffn_ln.bias'}
    with pytest.raises(ValueError, match=r"blocks\.1 lacks \['mlp\.ffn_ln\.bias'\]"):
        detect_format(lacking)
    wide = dict(cls, **{'blocks.0.mlp.w3.weight': torch.zeros(DIM, 2 * HIDDEN)})
    with pytest.raises(ValueError, match=r'blocks\.0\.mlp\.w3\.weight has shape .*EVA-02 Ti/S'):
        detect_format(wide)
    both = dict(mim, **{'fc_norm.weight': torch.ones(DIM), 'fc_norm.bias': torch.zeros(DIM)})
    with pytest.raises(ValueError, match='unknown checkpoint format'):
        detect_format(both)  # MIM head and classifier norm together: neither format


def test_eva02_model_checkpoint_prefers_nothing_it_lacks(tmp_path):
    """A file with only trained weights reports where they came from; an EMA container
    without tensors is ignored (not taken for the weights)."""
    src = save({'model': cls_state_dict(), 'model_ema': {'decay': 0.9999}}, tmp_path / 'c.pt')
    assert convert_checkpoint(src)['meta']['weights'] == 'model'
