"""EVA-01 segmentation: half-width deformable attention vs a slow reference, the ViT-Adapter
(shapes, strides, that it drives EVAViT's own blocks), the checkpoint converter round trip,
the real configs, and a short training run that must learn."""
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

import projects.eva.segmentation  # noqa: F401
from projects.eva.segmentation import EVAAdapter, MSDeformAttn

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs/demo/eva-mask2former_vit-tiny-adapter-p16_1xb8-160it_shapes-seg-128.py')
SEG = osp.join(ROOT, 'configs/segmentation')


pytestmark = pytest.mark.usefixtures('one_thread')


def build(cfg_model):
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    return MODELS.build(cfg_model)


def tiny_model(seed=0):
    torch.manual_seed(seed)
    model = build(Config.fromfile(DEMO).model)
    model.init_weights()
    return model


# ---------------------------------------------------------------- deformable attention
def bilinear_zero_pad(img, x, y):
    """img (H, W, C); continuous pixel coords (centre of pixel 0 at 0.0); zeros outside."""
    h, w, _ = img.shape
    x0, y0 = math.floor(x), math.floor(y)
    out = torch.zeros(img.shape[-1], dtype=img.dtype)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                out += wy * wx * img[yy, xx]
    return out


def slow_msda(attn, query, ref, feat, shapes):
    """Deformable attention written as loops over queries, heads, levels and points."""
    with torch.no_grad():
        return _slow_msda(attn, query, ref, feat, shapes)


def _slow_msda(attn, query, ref, feat, shapes):
    b, lq, _ = query.shape
    heads, levels, points = attn.num_heads, attn.num_levels, attn.num_points
    dh = attn.value_dims // heads
    value = feat @ attn.value_proj.weight.t() + attn.value_proj.bias
    offsets = (query @ attn.sampling_offsets.weight.t() + attn.sampling_offsets.bias).view(
        b, lq, heads, levels, points, 2)
    logits = (query @ attn.attention_weights.weight.t() + attn.attention_weights.bias).view(
        b, lq, heads, levels * points)
    weights = logits.softmax(-1).view(b, lq, heads, levels, points)
    out = torch.zeros(b, lq, attn.value_dims, dtype=query.dtype)
    for bi in range(b):
        start = 0
        maps = []
        for h_, w_ in shapes:
            maps.append(value[bi, start:start + h_ * w_].view(h_, w_, heads, dh))
            start += h_ * w_
        for q in range(lq):
            for hd in range(heads):
                acc = torch.zeros(dh, dtype=query.dtype)
                for lv, (h_, w_) in enumerate(shapes):
                    rx, ry = ref[min(bi, ref.shape[0] - 1), q, min(lv, ref.shape[2] - 1)]
                    for p in range(points):
                        ox, oy = offsets[bi, q, hd, lv, p]
                        x = float((rx + ox / w_) * w_ - 0.5)
                        y = float((ry + oy / h_) * h_ - 0.5)
                        acc += weights[bi, q, hd, lv, p] * bilinear_zero_pad(
                            maps[lv][:, :, hd], x, y)
                out[bi, q, hd * dh:(hd + 1) * dh] = acc
    return out @ attn.output_proj.weight.t() + attn.output_proj.bias


def test_msda_half_value_width_matches_slow_reference():
    torch.manual_seed(0)
    attn = MSDeformAttn(embed_dims=16, num_levels=2, num_heads=2, num_points=3, ratio=0.5).double()
    assert tuple(attn.value_proj.weight.shape) == (8, 16)  # value width = half
    assert tuple(attn.output_proj.weight.shape) == (16, 8)
    with torch.no_grad():  # offsets that reach across and beyond the maps (zero padding)
        for p in attn.parameters():
            p.normal_(0, 1.0)
    shapes = [(5, 7), (3, 4)]
    query = torch.randn(2, 6, 16, dtype=torch.double)
    feat = torch.randn(2, 35 + 12, 16, dtype=torch.double)
    ref = torch.rand(2, 6, 2, 2, dtype=torch.double)
    fast = attn(query, ref, feat, shapes)
    slow = slow_msda(attn, query, ref, feat, shapes)
    assert fast.shape == (2, 6, 16)
    torch.testing.assert_close(fast, slow, rtol=1e-9, atol=1e-9)
    # one reference point shared by all levels (the adapter's injector layout)
    ref1 = torch.rand(1, 6, 1, 2, dtype=torch.double)
    torch.testing.assert_close(attn(query, ref1, feat, shapes),
                               slow_msda(attn, query, ref1, feat, shapes), rtol=1e-9, atol=1e-9)


def test_msda_sampling_equals_mmcv_and_gradients():
    """Our int-size sampler (``sample_levels``: exportable) equals mmcv's
    ``multi_scale_deformable_attn_pytorch`` (sizes as a tensor), values and gradients, with
    samples beyond the maps; through the module it equals the loop reference."""
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch

    from projects.eva.segmentation.ms_deform_attn import sample_levels
    torch.manual_seed(1)
    shapes = [(5, 7), (3, 4), (2, 2)]
    lin = sum(h * w for h, w in shapes)
    value = torch.randn(2, lin, 2, 4, dtype=torch.double, requires_grad=True)
    locations = (torch.rand(2, 6, 2, 3, 3, 2, dtype=torch.double) * 1.6 - 0.3).requires_grad_()
    weights = torch.rand(2, 6, 2, 3, 3, dtype=torch.double).softmax(-1).requires_grad_()
    outs, grads = [], []
    for fn, sizes in ((multi_scale_deformable_attn_pytorch, torch.tensor(shapes)),
                      (sample_levels, shapes)):
        out = fn(value, sizes, locations, weights)
        outs.append(out)
        grads.append(torch.autograd.grad(out.pow(2).sum(), (value, locations, weights)))
    assert outs[1].shape == (2, 6, 8)
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-12, atol=1e-12)
    for a, b in zip(grads[1], grads[0]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    attn = MSDeformAttn(embed_dims=16, num_levels=3, num_heads=2, num_points=3,
                        ratio=0.5).double()
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0, 1.0)
    query = torch.randn(2, 6, 16, dtype=torch.double)
    feat = torch.randn(2, lin, 16, dtype=torch.double)
    ref = torch.rand(2, 6, 3, 2, dtype=torch.double)
    torch.testing.assert_close(attn(query, ref, feat, shapes),
                               slow_msda(attn, query, ref, feat, shapes), rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match='describe'):
        attn(query, ref, feat, [(5, 7), (3, 4), (2, 3)])


def test_msda_hand_computed_bilinear_samples():
    """2x2 map [[1, 2], [3, 4]], one head/point at the reference, identity projections."""
    attn = MSDeformAttn(embed_dims=2, num_levels=1, num_heads=1, num_points=1, ratio=0.5)
    with torch.no_grad():
        for p in attn.parameters():
            p.zero_()
        attn.value_proj.weight.copy_(torch.tensor([[1., 0.]]))
        attn.output_proj.weight.copy_(torch.tensor([[1.], [0.]]))
    feat = torch.tensor([[[1., 0.], [2., 0.], [3., 0.], [4., 0.]]])
    ref = torch.tensor([[[[0.5, 0.5]], [[0.25, 0.25]], [[0.75, 0.25]], [[0.0, 0.0]],
                         [[0.25, 0.75]]]])
    out = attn(torch.zeros(1, 5, 2), ref, feat, [(2, 2)])
    # centre = mean of 4; pixel centres exact; the corner (0,0) is a quarter of pixel 1
    torch.testing.assert_close(out[0, :, 0], torch.tensor([2.5, 1.0, 2.0, 0.25, 3.0]))
    assert torch.all(out[0, :, 1] == 0)


def test_msda_rejects_bad_input():
    with pytest.raises(ValueError, match='not divisible by num_heads'):
        MSDeformAttn(embed_dims=24, num_heads=8, ratio=0.5)  # 12 value channels / 8 heads
    attn = MSDeformAttn(embed_dims=8, num_levels=1, num_heads=2, num_points=1)
    with pytest.raises(ValueError, match='describe'):
        attn(torch.zeros(1, 3, 8), torch.zeros(1, 3, 1, 2), torch.zeros(1, 10, 8),
             [(3, 3)])


# ---------------------------------------------------------------- adapter
def test_adapter_shapes_strides_and_layer_ids():
    model = tiny_model()
    adapter = model.backbone
    assert isinstance(adapter, EVAAdapter)
    feats = adapter(torch.randn(2, 3, 64, 96))
    assert [tuple(f.shape) for f in feats] == [(2, 64, 64 // s, 96 // s) for s in (4, 8, 16, 32)]
    attn = adapter.interactions[0].injector.attn
    assert (attn.num_levels, tuple(attn.value_proj.weight.shape)) == (3, (32, 64))
    assert adapter.interactions[0].extra_extractors is None
    assert len(adapter.interactions[3].extra_extractors) == 2
    depth = adapter.get_layer_depth
    assert depth('backbone.vit.pos_embed', 'backbone.') == (0, 6)
    assert depth('backbone.vit.blocks.2.attn.qkv.weight', 'backbone.') == (3, 6)
    assert depth('backbone.spm.fc1.weight', 'backbone.') == (5, 6)
    assert depth('backbone.interactions.0.injector.gamma', 'backbone.') == (5, 6)


def test_adapter_drives_evavit_blocks_like_evavit():
    """With the injectors off (gamma = 0, EVA-01's init) and no cls position (EVA-01 gives the
    cls token none), the adapter's ViT tokens equal EVAViT's own forward, block by block."""
    model = tiny_model().eval()
    adapter, vit = model.backbone, model.backbone.vit
    with torch.no_grad():
        vit.pos_embed[:, 0] = 0
    assert all(float(i.injector.gamma.abs().sum()) == 0 for i in adapter.interactions)
    seen = []
    hooks = [blk.register_forward_hook(lambda m, a, o: seen.append(o[:, 1:]))
             for blk in vit.blocks]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        adapter(x)
        for h in hooks:
            h.remove()
        vit.out_indices = list(range(vit.num_layers))
        plain = vit(x)
    assert len(seen) == vit.num_layers
    for a, p in zip(seen, plain):
        torch.testing.assert_close(a, p[:, 1:])
    with torch.no_grad():  # a non-zero injector changes them: the adapter is wired in
        adapter.interactions[0].injector.gamma.fill_(1.0)
        seen.clear()
        hook = vit.blocks[0].register_forward_hook(lambda m, a, o: seen.append(o[:, 1:]))
        adapter(x)
        hook.remove()
    assert not torch.allclose(seen[0], plain[0][:, 1:])


def test_adapter_rejects_bad_configs():
    cfg = Config.fromfile(DEMO).model.backbone
    model = tiny_model()
    with pytest.raises(ValueError, match='multiple of 32'):
        model.backbone(torch.randn(1, 3, 48, 64))
    init_default_scope('mmseg')
    bad = cfg.copy()
    bad.interaction_indexes = [[0, 1], [3, 3]]
    with pytest.raises(ValueError, match='consecutive groups'):
        EVAAdapter(**{k: v for k, v in bad.items() if k != 'type'})
    bad = cfg.copy()
    bad.vit = dict(cfg.vit, patch_size=14, img_size=112)
    with pytest.raises(ValueError, match='patch-16'):
        EVAAdapter(**{k: v for k, v in bad.items() if k != 'type'})
    bad = cfg.copy()
    bad.vit = dict(cfg.vit, final_norm=True)
    with pytest.raises(ValueError, match='final_norm=False'):
        EVAAdapter(**{k: v for k, v in bad.items() if k != 'type'})


# ---------------------------------------------------------------- converter
def to_official(key):
    """Our key -> EVA-01 seg/ (mmseg 0.x + ViT-Adapter + mmcv 1.x transformer) key."""
    key = key.replace('backbone.vit.', 'backbone.')
    if '.pixel_decoder.encoder.layers.' in key:
        key = key.replace('.self_attn.', '.attentions.0.').replace('.ffn.', '.ffns.0.')
    if '.transformer_decoder.layers.' in key:
        key = (key.replace('.cross_attn.', '.attentions.0.')
               .replace('.self_attn.', '.attentions.1.').replace('.ffn.', '.ffns.0.'))
    return key


def test_converter_round_trip(tmp_path):
    from projects.eva.converters import convert_checkpoint
    model = tiny_model()
    ours = model.state_dict()
    torch.manual_seed(1)
    official = {to_official(k): (torch.randn(v.shape) if v.is_floating_point()
                                 else torch.randint(0, 9, v.shape)).to(v.dtype)
                for k, v in ours.items()}
    # spot checks of the official layout (shared doc section 4)
    for key in ('backbone.pos_embed', 'backbone.blocks.0.attn.q_bias',
                'backbone.interactions.3.extra_extractors.1.ffn.dwconv.dwconv.weight',
                'backbone.spm.stem.1.running_mean', 'backbone.norm4.weight',
                'decode_head.pixel_decoder.encoder.layers.1.attentions.0.value_proj.weight',
                'decode_head.pixel_decoder.encoder.layers.1.ffns.0.layers.0.0.weight',
                'decode_head.transformer_decoder.layers.2.attentions.0.attn.in_proj_weight',
                'decode_head.transformer_decoder.layers.2.attentions.1.attn.out_proj.bias',
                'decode_head.query_feat.weight', 'decode_head.mask_embed.4.bias'):
        assert key in official, key
    official['decode_head.conv_seg.weight'] = torch.randn(4, 64, 1, 1)  # mmseg 0.x, unused
    official['decode_head.conv_seg.bias'] = torch.randn(4)
    path = str(tmp_path / 'eva_sem_seg_mask2former_tiny.pth')
    torch.save(dict(meta=dict(mmseg_version='0.20.2'),
                    state_dict={k: v.half() if v.is_floating_point() else v
                                for k, v in official.items()}), path)
    out = convert_checkpoint(path)
    assert out['meta']['source_format'] == 'eva01-seg-adapter-mask2former'
    converted = out['state_dict']
    assert set(converted) == set(ours)
    model.load_state_dict(converted, strict=True)
    loaded = model.state_dict()
    for key, value in loaded.items():
        src = official[to_official(key)]
        expected = src.half().float() if src.is_floating_point() else src
        torch.testing.assert_close(value, expected.to(value.dtype), msg=key)
    # the cross-attention is the first mmcv attention of a decoder layer
    torch.testing.assert_close(
        loaded['decode_head.transformer_decoder.layers.0.cross_attn.attn.in_proj_weight'],
        official['decode_head.transformer_decoder.layers.0.attentions.0.attn.in_proj_weight']
        .half().float())


def test_converter_refuses_junk(tmp_path):
    from projects.eva.converters import convert_checkpoint
    sd = {'backbone.interactions.0.injector.gamma': torch.zeros(4),
          'decode_head.query_embed.weight': torch.zeros(2, 4), 'auxiliary_head.x': torch.zeros(1)}
    torch.save({'state_dict': sd}, str(tmp_path / 'c.pth'))
    with pytest.raises(ValueError, match='eva01-seg-adapter-mask2former: no backbone.patch_embed'):
        convert_checkpoint(str(tmp_path / 'c.pth'))  # no EVA-01 ViT inside: not this format
    fmt = 'eva01-seg-adapter-mask2former'
    with pytest.raises(KeyError, match='auxiliary_head.x'):  # forced: still every key mapped
        convert_checkpoint(str(tmp_path / 'c.pth'), format=fmt)
    with pytest.raises(ValueError, match='patch 16'):
        convert_checkpoint(str(tmp_path / 'c.pth'), patch_size=14, format=fmt)


# ---------------------------------------------------------------- segmentor, configs, training
def test_slide_pads_small_windows_to_the_crop():
    """A 64x96 image under a 96x96 sliding window: the window is zero-padded to 96x96 and
    the logits cut back, i.e. the same as decoding the padded image whole."""
    model = tiny_model().eval()
    model.test_cfg = Config(dict(mode='slide', crop_size=(96, 96), stride=(64, 64),
                                 pad_crops=True))
    x = torch.randn(1, 3, 64, 96)
    meta = [dict(img_shape=(64, 96), pad_shape=(64, 96), ori_shape=(64, 96))]
    with torch.no_grad():
        slide = model.inference(x, meta)
        padded = F.pad(x, (0, 0, 0, 32))
        whole = model.decode_head.predict(model.extract_feat(padded),
                                          [dict(img_shape=(96, 96), pad_shape=(96, 96))],
                                          model.test_cfg)
    assert slide.shape == (1, 4, 64, 96)
    torch.testing.assert_close(slide, whole[..., :64, :])
    # without padding the window is decoded at 64x96: a different (valid) prediction
    model.test_cfg.pad_crops = False
    with torch.no_grad():
        unpadded = model.inference(x, [dict(m) for m in meta])
    assert unpadded.shape == (1, 4, 64, 96) and not torch.allclose(unpadded, slide)


CONFIGS = {
    'eva-mask2former_vit-g-adapter-p16_32xb1-60k_coco-stuff164k-896x896.py':
        dict(classes=171, iters=60000, batch=1, lr=1.5e-5, warmup=1500),
    'eva-mask2former_vit-g-adapter-p16_32xb2-20k_coco-stuff164k-to-ade20k-896x896.py':
        dict(classes=150, iters=20000, batch=2, lr=2.5e-5, warmup=500),
    'eva-mask2former_vit-g-fpn-p16_32xb1-60k_coco-stuff164k-896x896.py':
        dict(classes=171, iters=60000, batch=1, lr=1.5e-5, warmup=1500),
}


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_real_configs_follow_eva01(name):
    exp = CONFIGS[name]
    cfg = Config.fromfile(osp.join(SEG, name))
    head = cfg.model.decode_head
    assert (head.num_classes, head.num_queries, head.feat_channels, head.out_channels) == \
        (exp['classes'], 200, 1024, 1024)
    dec = head.transformer_decoder
    assert (dec.num_layers, dec.layer_cfg.self_attn_cfg.num_heads,
            dec.layer_cfg.ffn_cfg.feedforward_channels) == (8, 32, 4096)
    enc = head.pixel_decoder.encoder
    assert (enc.num_layers, enc.layer_cfg.self_attn_cfg.num_heads,
            enc.layer_cfg.self_attn_cfg.num_levels) == (6, 32, 3)
    assert head.loss_cls.loss_weight == 2.0 and head.loss_cls.class_weight[-1] == 0.1
    assert len(head.loss_cls.class_weight) == exp['classes'] + 1
    assert (head.loss_mask.loss_weight, head.loss_dice.loss_weight) == (5.0, 5.0)
    assert head.train_cfg.num_points == 12544
    assert cfg.model.test_cfg.crop_size == (896, 896) and cfg.model.test_cfg.stride == (512, 512)
    assert cfg.model.data_preprocessor.mean == [123.675, 116.28, 103.53]
    opt = cfg.optim_wrapper
    assert (opt.optimizer.lr, opt.optimizer.betas, opt.optimizer.weight_decay) == \
        (exp['lr'], (0.9, 0.999), 0.05)
    assert opt.constructor == 'EVALayerDecayOptimWrapperConstructor'
    assert opt.paramwise_cfg.layer_decay_rate == 0.95
    assert cfg.train_cfg.max_iters == exp['iters'] and cfg.train_dataloader.batch_size == exp['batch']
    warm, poly = cfg.param_scheduler
    assert (warm.end, warm.start_factor, poly.end, poly.power) == \
        (exp['warmup'] + 1, 1e-6, exp['iters'] + 1, 1.0)
    train = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert train['RandomResize'].scale == (3584, 896) and train['RandomResize'].ratio_range == (0.5, 2.0)
    assert train['RandomCrop'].crop_size == (896, 896) and train['RandomCrop'].cat_max_ratio == 0.75
    assert 'PhotoMetricDistortion' in train
    scales = [t.scale for t in cfg.tta_pipeline[1].transforms[0]]
    assert scales[0] == (2048, 512) and scales[-1] == (5120, 1280) and len(scales) == 7
    if 'adapter' in name:
        bb = cfg.model.backbone
        assert (bb.deform_ratio, bb.deform_num_heads, bb.conv_inplane) == (0.5, 16, 64)
        assert bb.interaction_indexes == [[0, 9], [10, 19], [20, 29], [30, 39]]
        vit = bb.vit
    else:
        vit = cfg.model.backbone
        assert vit.out_indices == [9, 19, 29, 39] and cfg.model.neck.rescales == [4, 2, 1, 0.5]
    assert (vit.arch, vit.patch_size, vit.img_size, vit.drop_path_rate, vit.with_cp) == \
        ('giant', 16, 896, 0.5, True)


def test_giant_adapter_model_on_meta_device():
    cfg = Config.fromfile(osp.join(SEG, sorted(CONFIGS)[0]))
    with torch.device('meta'):
        model = build(cfg.model)
    sd = model.state_dict()
    assert tuple(sd['backbone.vit.pos_embed'].shape) == (1, 1 + 56 * 56, 1408)  # 3137 tokens
    assert tuple(sd['backbone.interactions.0.injector.attn.value_proj.weight'].shape) == (704, 1408)
    assert tuple(sd['backbone.interactions.3.extra_extractors.1.attn.output_proj.weight'].shape) == (1408, 704)
    assert tuple(sd['decode_head.cls_embed.weight'].shape) == (172, 1024)
    assert tuple(sd['decode_head.query_feat.weight'].shape) == (200, 1024)
    assert 'backbone.vit.blocks.39.mlp.fc2.weight' in sd and 'backbone.vit.blocks.40.norm1.weight' not in sd
    assert 'backbone.vit.norm.weight' not in sd


def test_layer_decay_groups_and_warmup_poly_schedule():
    """Shared layer-decay constructor on the tiny model with the real configs' rules, and the
    chained warmup x poly schedule equal to mmcv's poly-with-warmup."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.optim.scheduler import LinearLR, PolyLR
    model = tiny_model()
    real = Config.fromfile(osp.join(SEG, sorted(CONFIGS)[0])).optim_wrapper
    wrapper = build_optim_wrapper(model, real)
    groups = {g['param_name']: g for g in wrapper.optimizer.param_groups}
    lr = 1.5e-5
    top = 0.95 ** 5  # 4 blocks: ids 0..5
    assert groups['backbone.vit.pos_embed']['lr'] == pytest.approx(lr * top)
    assert groups['backbone.vit.pos_embed']['weight_decay'] == 0.05  # EVA-01 decays it
    assert groups['backbone.vit.blocks.0.attn.qkv.weight']['lr'] == pytest.approx(lr * 0.95 ** 4)
    assert groups['backbone.vit.blocks.0.attn.q_bias']['weight_decay'] == 0.0
    assert groups['backbone.spm.fc1.weight']['lr'] == pytest.approx(lr)
    assert groups['decode_head.pixel_decoder.mask_feature.weight']['lr'] == pytest.approx(lr)
    assert groups['decode_head.query_embed.weight']['lr'] == pytest.approx(lr * 0.95 ** 41)
    assert groups['decode_head.cls_embed.weight']['lr'] == pytest.approx(lr * 0.95 ** 41)
    # schedule: the configs' chained LinearLR(1e-6, warmup) and PolyLR(power 1), scaled to
    # warmup 10 / 100 iters, equal mmcv's lr = base * (1-(1-i/10)(1-1e-6)) * (1-i/100)
    warm_cfg, poly_cfg = Config.fromfile(osp.join(SEG, sorted(CONFIGS)[0])).param_scheduler
    assert (warm_cfg.end, poly_cfg.end) == (1500 + 1, 60000 + 1)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheds = [LinearLR(opt, start_factor=1e-6, by_epoch=False, begin=0, end=10 + 1),
              PolyLR(opt, power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=100 + 1)]
    for it in range(1, 100):
        for s in scheds:
            s.step()
        warm = 1 - (1 - min(it, 10) / 10) * (1 - 1e-6)
        assert opt.param_groups[0]['lr'] == pytest.approx(warm * (1 - it / 100), rel=1e-6), it


def test_short_training_learns_the_shapes():
    """30 AdamW steps on 8 drawn images: the Mask2Former loss falls by a third and the
    predicted maps segment the shapes (mIoU 0.04 -> 0.95 measured; a model that learned only
    the background class would score ~0.2)."""
    from seg_training import overfit
    losses, before, after = overfit(tiny_model(seed=0))
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first * 0.67, (first, last)
    assert before < 0.3 and after > 0.7, (before, after)


def test_light_fpn_option_feeds_mask2former():
    """No adapter: EVAViT featmaps + mmseg Feature2Pyramid give strides 4..32 for the head."""
    cfg = Config.fromfile(DEMO).model
    vit = dict(cfg.backbone.vit, out_indices=[0, 1, 2, 3], out_type='featmap')
    cfg.backbone = vit
    cfg.neck = dict(type='Feature2Pyramid', embed_dim=64, rescales=[4, 2, 1, 0.5],
                    norm_cfg=dict(type='BN'))
    torch.manual_seed(0)
    model = build(cfg)
    model.init_weights()
    feats = model.extract_feat(torch.randn(2, 3, 64, 96))
    assert [tuple(f.shape) for f in feats] == [(2, 64, 64 // s, 96 // s) for s in (4, 8, 16, 32)]
    meta = [dict(img_shape=(64, 96), pad_shape=(64, 96), ori_shape=(64, 96))] * 2
    model.eval()
    with torch.no_grad():
        assert model.inference(torch.randn(2, 3, 64, 96), meta).shape == (2, 4, 64, 96)
