"""detrex ``dino_eva`` checkpoints -> mmdet ``DINO`` on ``EVAViT`` (converters/dino.py).

detectron2 and detrex (compiled extensions, not on PyPI) cannot be installed here, so the
released layout is written out below from detrex's module definitions (projects/dino_eva/
modeling/dino.py, dino_transformer.py; detrex/layers: BaseTransformerLayer, FFN, MLP,
MultiheadAttention (wraps torch's), MultiScaleDeformableAttention, ConvNormAct,
ChannelMapper; detectron2 SimpleFeaturePyramid), not read off our model. Each converted
module is then run against detrex's computation written with torch primitives on the *source*
tensors: the pyramid + channel mapper, an encoder layer, a decoder layer (torch's
nn.MultiheadAttention loaded with the source in_proj / out_proj, as detrex wraps it; the
deformable sampling is mmcv's ``multi_scale_deformable_attn_pytorch``, detrex's CPU path), the
class / box branches. The whole DINO forward (query selection, refinement, denoising) is
mmdet's and is not compared with detrex's: detrex's DINO cannot run without detectron2.
"""
import copy
import os.path as osp
import sys

import pytest
import torch
import torch.nn.functional as F

from projects.eva.converters import convert_checkpoint, detect_format

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path[:0] = [osp.join(ROOT, 'tests', 'converters')]
DEMO = osp.join(ROOT, 'configs', 'demo', 'eva02-dino_vit-tiny-p16_shapes-128.py')
TOL = dict(rtol=1e-5, atol=1e-5)
# the demo's sizes: EVA-02 ViT 64 wide (2 heads, SwiGLU 170), 4 blocks, 8x8 patches; DINO at
# its real width 256, 8 heads, 4 levels x 4 points, FFN 512, 2 encoder / 3 decoder layers,
# 30 queries
D, HEADS, LEVELS, POINTS, FFN_DIM, ENC, DEC, QUERIES, CLASSES, VIT = \
    256, 8, 4, 4, 512, 2, 3, 30, 3, 64


def detrex_state_dict(seed=0):
    """``DINO(backbone=SimpleFeaturePyramid(net=EVA02_ViT), neck=ChannelMapper,
    transformer=DINOTransformer)``.state_dict() at the demo's sizes, random values."""
    from test_converters import official_vit
    g = torch.Generator().manual_seed(seed)

    def r(*shape, base=0.):
        return base + torch.randn(*shape, generator=g) * 0.2

    def linear(name, out, inp):
        return {f'{name}.weight': r(out, inp), f'{name}.bias': r(out)}

    def norm(name, dim):
        return {f'{name}.weight': r(dim, base=1.), f'{name}.bias': r(dim)}

    sd = {f'backbone.net.{k}': v for k, v in official_vit(
        grid=8, patch=16, depth=4, seed=seed, rope=('rope_win', 'rope_glb')).items()
        if k != 'cls_token'}
    # detectron2 SFP, scale 2: ConvTranspose2d + Conv2d(1x1, norm=LN) + Conv2d(3x3, norm=LN)
    sd.update({'backbone.simfp_3.0.weight': r(VIT, VIT // 2, 2, 2),
               'backbone.simfp_3.0.bias': r(VIT // 2),
               'backbone.simfp_3.1.weight': r(D, VIT // 2, 1, 1),
               'backbone.simfp_3.2.weight': r(D, D, 3, 3)})
    sd.update({'backbone.simfp_4.0.weight': r(D, VIT, 1, 1),
               'backbone.simfp_4.1.weight': r(D, D, 3, 3)})
    sd.update({'backbone.simfp_5.1.weight': r(D, VIT, 1, 1),  # .0 is the max-pool
               'backbone.simfp_5.2.weight': r(D, D, 3, 3)})
    for conv in ('simfp_3.1', 'simfp_3.2', 'simfp_4.0', 'simfp_4.1', 'simfp_5.1', 'simfp_5.2'):
        sd.update(norm(f'backbone.{conv}.norm', D))
    for i in range(LEVELS):  # ChannelMapper: ConvNormAct(1x1, bias=True, GroupNorm)
        sd.update({f'neck.convs.{i}.conv.weight': r(D, D, 1, 1),
                   f'neck.convs.{i}.conv.bias': r(D)})
        sd.update(norm(f'neck.convs.{i}.norm', D))

    def msda(name):
        return {**linear(f'{name}.sampling_offsets', HEADS * LEVELS * POINTS * 2, D),
                **linear(f'{name}.attention_weights', HEADS * LEVELS * POINTS, D),
                **linear(f'{name}.value_proj', D, D), **linear(f'{name}.output_proj', D, D)}

    def ffn(name):
        return {**linear(f'{name}.layers.0.0', FFN_DIM, D), **linear(f'{name}.layers.1', D, FFN_DIM)}

    t = 'transformer.'
    for i in range(ENC):
        p = f'{t}encoder.layers.{i}.'
        sd.update({**msda(p + 'attentions.0'), **ffn(p + 'ffns.0'),
                   **norm(p + 'norms.0', D), **norm(p + 'norms.1', D)})
    for i in range(DEC):
        p = f'{t}decoder.layers.{i}.'
        sd.update({p + 'attentions.0.attn.in_proj_weight': r(3 * D, D),
                   p + 'attentions.0.attn.in_proj_bias': r(3 * D),
                   **linear(p + 'attentions.0.attn.out_proj', D, D),
                   **msda(p + 'attentions.1'), **ffn(p + 'ffns.0'),
                   **{k: v for j in range(3) for k, v in norm(p + f'norms.{j}', D).items()}})
    sd.update({**linear(t + 'decoder.ref_point_head.layers.0', D, 2 * D),
               **linear(t + 'decoder.ref_point_head.layers.1', D, D),
               **norm(t + 'decoder.norm', D),
               t + 'level_embeds': r(LEVELS, D), t + 'tgt_embed.weight': r(QUERIES, D),
               **linear(t + 'enc_output', D, D), **norm(t + 'enc_output_norm', D),
               'label_enc.weight': r(CLASSES, D)})
    for k in range(DEC + 1):  # one per decoder layer + the encoder's proposal head
        sd.update(linear(f'class_embed.{k}', CLASSES, D))
        for j, (o, i) in enumerate(((D, D), (D, D), (4, D))):
            sd.update(linear(f'bbox_embed.{k}.layers.{j}', o, i))
    # the decoder holds the same ModuleLists: saved twice
    sd.update({f'{t}decoder.{k}': v for k, v in sd.items()
               if k.startswith(('class_embed.', 'bbox_embed.'))})
    return sd


def _model():
    import projects.eva.detection  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(DEMO)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg.model).eval()


def _save(obj, path):
    torch.save(obj, path)
    return str(path)


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    sd = detrex_state_dict()
    src = _save({'model': sd, 'iteration': 89999}, tmp_path_factory.mktemp('d') / 'dino.pth')
    out = convert_checkpoint(src)
    model = _model()
    model.load_state_dict(out['state_dict'], strict=True)
    return sd, out, model


def test_every_key_is_mapped_and_loads_strictly(converted):
    sd, out, model = converted
    assert out['meta']['source_format'] == 'detrex-dino-eva02'
    dropped = out['meta']['dropped']
    assert set(dropped) == {'12 RoPE tables (*rope*.freqs_cos/sin)',
                            'transformer.decoder.class_embed.*',
                            'transformer.decoder.bbox_embed.*'}
    ours = model.state_dict()
    assert set(out['state_dict']) == set(ours)  # strict: nothing missing, nothing extra
    for src, dst in (('transformer.level_embeds', 'level_embed'),
                     ('transformer.tgt_embed.weight', 'query_embedding.weight'),
                     ('transformer.enc_output.weight', 'memory_trans_fc.weight'),
                     ('transformer.enc_output_norm.bias', 'memory_trans_norm.bias'),
                     ('label_enc.weight', 'dn_query_generator.label_embedding.weight'),
                     ('transformer.decoder.ref_point_head.layers.1.weight',
                      'decoder.ref_point_head.layers.1.weight'),
                     ('transformer.decoder.norm.weight', 'decoder.norm.weight'),
                     ('backbone.net.blocks.3.mlp.ffn_ln.weight',
                      'backbone.blocks.3.mlp.ffn_ln.weight')):
        torch.testing.assert_close(ours[dst], sd[src], rtol=0, atol=0, msg=src)
    # the pos table's cls slot goes at load (the det ViT keeps it in the file)
    torch.testing.assert_close(ours['backbone.pos_embed'], sd['backbone.net.pos_embed'][:, 1:])


def _ln2d(x, w, b, eps=1e-6):
    """detectron2 LayerNorm over channels of NCHW."""
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    return w[:, None, None] * ((x - u) / torch.sqrt(s + eps)) + b[:, None, None]


def test_pyramid_and_channel_mapper_match_detrex(converted):
    sd, _, model = converted
    x = torch.randn(2, VIT, 8, 8)

    def conv_ln(name, y, padding=0):
        y = F.conv2d(y, sd[f'backbone.{name}.weight'], padding=padding)
        return _ln2d(y, sd[f'backbone.{name}.norm.weight'], sd[f'backbone.{name}.norm.bias'])

    p3 = F.conv_transpose2d(x, sd['backbone.simfp_3.0.weight'], sd['backbone.simfp_3.0.bias'],
                            stride=2)
    p3 = conv_ln('simfp_3.2', conv_ln('simfp_3.1', p3), 1)
    p4 = conv_ln('simfp_4.1', conv_ln('simfp_4.0', x), 1)
    p5 = conv_ln('simfp_5.2', conv_ln('simfp_5.1', F.max_pool2d(x, 2, 2)), 1)
    p6 = F.max_pool2d(p5, kernel_size=1, stride=2)  # LastLevelMaxPool
    expect = [F.group_norm(F.conv2d(p, sd[f'neck.convs.{i}.conv.weight'],
                                    sd[f'neck.convs.{i}.conv.bias']), 32,
                           sd[f'neck.convs.{i}.norm.weight'], sd[f'neck.convs.{i}.norm.bias'])
              for i, p in enumerate((p3, p4, p5, p6))]
    with torch.no_grad():
        got = model.neck(x)
    assert len(got) == 4
    for g, e in zip(got, expect):
        torch.testing.assert_close(g, e, **TOL)


SHAPES = [(8, 8), (4, 4), (2, 2), (1, 1)]


def _msda(sd, name, query, value, ref, pos, padding=None):
    """detrex MultiScaleDeformableAttention (batch_first, CPU path), from source tensors."""
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
    bs, nq, _ = query.shape
    identity, q = query, query + pos
    v = F.linear(value, sd[name + '.value_proj.weight'], sd[name + '.value_proj.bias'])
    if padding is not None:
        v = v.masked_fill(padding[..., None], 0.0)
    v = v.view(bs, v.shape[1], HEADS, -1)
    off = F.linear(q, sd[name + '.sampling_offsets.weight'], sd[name + '.sampling_offsets.bias'])
    off = off.view(bs, nq, HEADS, LEVELS, POINTS, 2)
    w = F.linear(q, sd[name + '.attention_weights.weight'], sd[name + '.attention_weights.bias'])
    w = w.view(bs, nq, HEADS, LEVELS * POINTS).softmax(-1).view(bs, nq, HEADS, LEVELS, POINTS)
    shapes = torch.tensor(SHAPES)
    if ref.shape[-1] == 2:
        norm = torch.stack([shapes[..., 1], shapes[..., 0]], -1)
        loc = ref[:, :, None, :, None, :] + off / norm[None, None, None, :, None, :]
    else:
        loc = ref[:, :, None, :, None, :2] + off / POINTS * ref[:, :, None, :, None, 2:] * 0.5
    out = multi_scale_deformable_attn_pytorch(v, shapes, loc, w)
    return F.linear(out, sd[name + '.output_proj.weight'], sd[name + '.output_proj.bias']) + \
        identity


def _ffn_norm(sd, p, x, n):
    """detrex FFN (Linear-ReLU-Linear, identity added) then LayerNorm ``norms.n``."""
    h = F.relu(F.linear(x, sd[p + 'ffns.0.layers.0.0.weight'], sd[p + 'ffns.0.layers.0.0.bias']))
    x = x + F.linear(h, sd[p + 'ffns.0.layers.1.weight'], sd[p + 'ffns.0.layers.1.bias'])
    return F.layer_norm(x, (D,), sd[p + f'norms.{n}.weight'], sd[p + f'norms.{n}.bias'])


def _level_inputs(bs=2):
    torch.manual_seed(0)
    shapes = torch.tensor(SHAPES)
    start = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    n = int(shapes.prod(1).sum())
    return shapes, start, n, torch.ones(bs, LEVELS, 2)


def test_encoder_layer_matches_detrex(converted):
    sd, _, model = converted
    shapes, start, n, ratios = _level_inputs()
    x, pos = torch.randn(2, n, D), torch.randn(2, n, D)
    ref = torch.rand(2, n, LEVELS, 2)
    padding = torch.zeros(2, n, dtype=torch.bool)
    padding[1, -5:] = True
    p = 'transformer.encoder.layers.1.'
    y = _msda(sd, p + 'attentions.0', x, x, ref, pos, padding)
    y = F.layer_norm(y, (D,), sd[p + 'norms.0.weight'], sd[p + 'norms.0.bias'])
    expect = _ffn_norm(sd, p, y, 1)
    with torch.no_grad():
        got = model.encoder.layers[1](query=x, query_pos=pos, key_padding_mask=padding,
                                      spatial_shapes=shapes, level_start_index=start,
                                      valid_ratios=ratios, reference_points=ref)
    torch.testing.assert_close(got, expect, **TOL)


def test_decoder_layer_matches_detrex(converted):
    """Self-attention through torch's nn.MultiheadAttention (what detrex's wraps) with the
    denoising mask, deformable cross-attention on 4-d reference boxes, FFN, 3 norms."""
    sd, _, model = converted
    shapes, start, n, ratios = _level_inputs()
    nq = 12
    q, pos, memory = torch.randn(2, nq, D), torch.randn(2, nq, D), torch.randn(2, n, D)
    ref = torch.rand(2, nq, LEVELS, 4) * 0.5 + 0.25
    mask = torch.zeros(nq, nq, dtype=torch.bool)
    mask[:4, 4:] = True  # denoising groups do not see the matching queries
    padding = torch.zeros(2, n, dtype=torch.bool)
    padding[0, -3:] = True
    p = 'transformer.decoder.layers.2.'
    mha = torch.nn.MultiheadAttention(D, HEADS, batch_first=True)
    mha.load_state_dict({'in_proj_weight': sd[p + 'attentions.0.attn.in_proj_weight'],
                         'in_proj_bias': sd[p + 'attentions.0.attn.in_proj_bias'],
                         'out_proj.weight': sd[p + 'attentions.0.attn.out_proj.weight'],
                         'out_proj.bias': sd[p + 'attentions.0.attn.out_proj.bias']})
    mha.eval()
    with torch.no_grad():
        y = q + mha(q + pos, q + pos, q, attn_mask=mask)[0]
        y = F.layer_norm(y, (D,), sd[p + 'norms.0.weight'], sd[p + 'norms.0.bias'])
        y = _msda(sd, p + 'attentions.1', y, memory, ref, pos, padding)
        y = F.layer_norm(y, (D,), sd[p + 'norms.1.weight'], sd[p + 'norms.1.bias'])
        expect = _ffn_norm(sd, p, y, 2)
        got = model.decoder.layers[2](query=q, value=memory, query_pos=pos,
                                      key_padding_mask=padding, self_attn_mask=mask,
                                      spatial_shapes=shapes, level_start_index=start,
                                      valid_ratios=ratios, reference_points=ref)
    torch.testing.assert_close(got, expect, **TOL)


def test_prediction_branches_match_detrex(converted):
    """class_embed.k (focal logits) and bbox_embed.k (MLP: Linear-ReLU-Linear-ReLU-Linear)
    for every decoder layer and the encoder's proposal head (k = 6 in the real model)."""
    sd, _, model = converted
    x = torch.randn(2, 7, D)
    with torch.no_grad():
        for k in range(DEC + 1):
            logits = F.linear(x, sd[f'class_embed.{k}.weight'], sd[f'class_embed.{k}.bias'])
            torch.testing.assert_close(model.bbox_head.cls_branches[k](x), logits, **TOL)
            h = x
            for j in range(3):
                h = F.linear(h, sd[f'bbox_embed.{k}.layers.{j}.weight'],
                             sd[f'bbox_embed.{k}.layers.{j}.bias'])
                h = F.relu(h) if j < 2 else h
            torch.testing.assert_close(model.bbox_head.reg_branches[k](x), h, **TOL)


def test_converted_detector_predicts(converted):
    """The converted detector runs end to end (mmdet's DINO forward, 30 boxes per image)."""
    from mmdet.structures import DetDataSample
    _, _, model = converted
    sample = DetDataSample(metainfo=dict(img_shape=(128, 112), ori_shape=(128, 112),
                                         batch_input_shape=(128, 128), scale_factor=(1., 1.)))
    with torch.no_grad():
        out = model.predict(torch.randn(1, 3, 128, 128), [sample])
    boxes = out[0].pred_instances.bboxes
    assert boxes.shape == (30, 4) and torch.isfinite(boxes).all()


def test_unmapped_or_inconsistent_keys_are_refused(tmp_path):
    sd = detrex_state_dict()
    assert detect_format(sd).name == 'detrex-dino-eva02'
    extra = dict(sd, **{'transformer.decoder.layers.0.attentions.2.foo': torch.zeros(1)})
    with pytest.raises(KeyError, match=r'attentions\.2\.foo'):
        convert_checkpoint(_save({'model': extra}, tmp_path / 'extra.pth'))
    bad = copy.copy(sd)
    bad['transformer.decoder.class_embed.2.weight'] = torch.zeros(CLASSES, D)
    with pytest.raises(ValueError, match=r'class_embed\.2\.weight differs'):
        convert_checkpoint(_save({'model': bad}, tmp_path / 'bad.pth'))
    wrong_mean = dict(sd, pixel_mean=torch.tensor([0., 0., 0.]).view(3, 1, 1))
    with pytest.raises(ValueError, match='pixel_mean'):
        convert_checkpoint(_save({'model': wrong_mean}, tmp_path / 'mean.pth'))
