"""EVA-01 segmentation variant B ("relpos_layerscale_9dec"): BEiT relative-position tables
and layer scale in the adapter's EVAViT, the converter for the released checkpoints (official
index buffers checked and dropped), the two real configs, the full-size model on the meta
device, and EVA-01's layer-decay / weight-decay rules for the new parameters."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import projects.eva.segmentation  # noqa: F401
from projects.eva.models.eva_vit import beit_relative_position_index

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs/demo/eva-mask2former_vit-tiny-adapter-p16_1xb8-160it_shapes-seg-128.py')
SEG = osp.join(ROOT, 'configs/segmentation')
COCO_A = 'eva-mask2former_vit-g-adapter-p16_32xb1-60k_coco-stuff164k-896x896.py'
COCO_B = 'eva-mask2former-9dec_vit-g-adapter-relpos-ls-p16_16xb2-80k_coco-stuff164k-896x896.py'
ADE_B = 'eva-mask2former-9dec_vit-g-adapter-relpos-ls-p16_16xb2-40k_coco-stuff164k-to-ade20k-896x896.py'


pytestmark = pytest.mark.usefixtures('one_thread')


def build(cfg_model):
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    return MODELS.build(cfg_model)


def tiny_model(variant_b=True, seed=0):
    """The demo's tiny adapter + Mask2Former at 64 px (4x4 patch grid)."""
    cfg = Config.fromfile(DEMO).model
    cfg.backbone.vit.img_size = 64
    if variant_b:
        cfg.backbone.vit.update(use_rel_pos_bias=True, layer_scale_init_value=1.0)
    torch.manual_seed(seed)
    model = build(cfg)
    model.init_weights()
    return model


def to_official(key):
    """Our key -> EVA-01 seg/ (mmseg 0.x + ViT-Adapter + mmcv 1.x transformer) key."""
    key = key.replace('backbone.vit.', 'backbone.')
    if '.pixel_decoder.encoder.layers.' in key:
        key = key.replace('.self_attn.', '.attentions.0.').replace('.ffn.', '.ffns.0.')
    if '.transformer_decoder.layers.' in key:
        key = (key.replace('.cross_attn.', '.attentions.0.')
               .replace('.self_attn.', '.attentions.1.').replace('.ffn.', '.ffns.0.'))
    return key


# ---------------------------------------------------------------- model
def test_zero_table_unit_gamma_adapter_equals_variant_a():
    """Variant B at its init (zero tables, gamma 1) with variant A's weights gives variant A's
    features; a trained-looking table changes them."""
    a = tiny_model(variant_b=False).eval()
    b = tiny_model(variant_b=True, seed=1).eval()
    res = b.load_state_dict(a.state_dict(), strict=False)
    assert not res.unexpected_keys
    assert sorted(res.missing_keys) == sorted(
        f'backbone.vit.blocks.{i}.{n}' for i in range(4)
        for n in ('gamma_1', 'gamma_2', 'attn.relative_position_bias_table'))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for fa, fb in zip(a.extract_feat(x), b.extract_feat(x)):
            torch.testing.assert_close(fb, fa)
        b.backbone.vit.blocks[0].attn.relative_position_bias_table.normal_()
        assert not torch.allclose(b.extract_feat(x)[0], a.extract_feat(x)[0])


def test_variant_b_adapter_grads_and_grid_error():
    model = tiny_model().train()
    for m in model.modules():  # no random drop path: every block must get gradients
        if type(m).__name__ == 'DropPath':
            m.prob = 0.
    x = torch.randn(2, 3, 64, 64)
    feats = model.backbone(x)
    assert [tuple(f.shape) for f in feats] == [(2, 64, 64 // s, 64 // s) for s in (4, 8, 16, 32)]
    # a fixed random read-out (a squared norm of BN outputs would be constant in train mode)
    torch.manual_seed(2)
    sum((f * torch.randn_like(f)).sum() for f in feats).backward()
    blocks = model.backbone.vit.blocks
    for i, blk in enumerate(blocks):
        table = blk.attn.relative_position_bias_table.grad.abs().sum(1)
        assert table[:-3].sum() > 0 and table[-2] > 0  # patch->patch, patch->cls rows
        # cls->patch / cls->cls only shape the cls token, which the last block's output drops
        cls_rows = table[-3] + table[-1]
        assert (cls_rows > 0) if i < len(blocks) - 1 else (cls_rows == 0)
        assert blk.gamma_1.grad.abs().sum() > 0 and blk.gamma_2.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r'\(4, 4\) patch grid'):
        model.backbone(torch.randn(1, 3, 64, 96))


def test_layer_and_weight_decay_of_new_params_follow_eva01():
    """EVA-01's seg constructor: block k's gamma and table get layer id k+1; 1-D gammas get no
    weight decay, the 2-D table IS decayed (BEiT's exclusion is commented out there)."""
    from mmengine.optim import build_optim_wrapper
    model = tiny_model()
    real = Config.fromfile(osp.join(SEG, ADE_B)).optim_wrapper
    groups = {g['param_name']: g for g in build_optim_wrapper(model, real).optimizer.param_groups}
    lr = 1e-5  # 4 blocks: ids 0..5, top 5
    for k in range(4):
        gamma = groups[f'backbone.vit.blocks.{k}.gamma_1']
        table = groups[f'backbone.vit.blocks.{k}.attn.relative_position_bias_table']
        assert gamma['lr'] == pytest.approx(lr * 0.9 ** (4 - k)) and gamma['weight_decay'] == 0.0
        assert table['lr'] == pytest.approx(lr * 0.9 ** (4 - k)) and table['weight_decay'] == 0.05
        assert groups[f'backbone.vit.blocks.{k}.gamma_2']['weight_decay'] == 0.0
    assert groups['decode_head.query_embed.weight']['lr'] == pytest.approx(lr * 0.9 ** 41)
    assert groups['backbone.vit.pos_embed']['lr'] == pytest.approx(lr * 0.9 ** 5)


# ---------------------------------------------------------------- converter
def test_variant_b_converter_round_trip(tmp_path):
    from projects.eva.converters import convert_checkpoint
    model = tiny_model()
    ours = model.state_dict()
    assert not any('relative_position_index' in k for k in ours)
    torch.manual_seed(1)
    official = {to_official(k): (torch.randn(v.shape) if v.is_floating_point()
                                 else torch.randint(0, 9, v.shape)).to(v.dtype)
                for k, v in ours.items()}
    for i in range(4):  # BEiT's persistent int64 index buffers, 4x4 grid -> (17, 17)
        official[f'backbone.blocks.{i}.attn.relative_position_index'] = \
            beit_relative_position_index(4, 4)
    for key in ('backbone.blocks.3.gamma_1', 'backbone.blocks.3.gamma_2',
                'backbone.blocks.3.attn.relative_position_bias_table'):
        assert key in official, key
    assert official['backbone.blocks.0.attn.relative_position_bias_table'].shape == (7 * 7 + 3, 4)
    path = str(tmp_path / 'eva_sem_seg_mask2former_relpos_layerscale_9dec_tiny.pth')
    torch.save(dict(meta=dict(mmseg_version='0.20.2'),
                    state_dict={k: v.half() if v.is_floating_point() else v
                                for k, v in official.items()}), path)
    out = convert_checkpoint(path)
    assert out['meta']['source_format'] == 'eva01-seg-adapter-mask2former'
    converted = out['state_dict']
    assert set(converted) == set(ours)  # every tensor accounted for, the 4 indices dropped
    model.load_state_dict(converted, strict=True)
    for key, value in model.state_dict().items():
        src = official[to_official(key)]
        expected = src.half().float() if src.is_floating_point() else src
        torch.testing.assert_close(value, expected.to(value.dtype), msg=key)

    bad = dict(official)
    bad['backbone.blocks.2.attn.relative_position_index'] = beit_relative_position_index(4, 4).t()
    torch.save({'state_dict': bad}, str(tmp_path / 'bad.pth'))
    with pytest.raises(ValueError, match=r'blocks\.2\..*differ from BEiT'):
        convert_checkpoint(str(tmp_path / 'bad.pth'))
    bad['backbone.blocks.2.attn.relative_position_index'] = torch.zeros(17, 16, dtype=torch.long)
    torch.save({'state_dict': bad}, str(tmp_path / 'bad.pth'))
    with pytest.raises(ValueError, match='not a BEiT index'):
        convert_checkpoint(str(tmp_path / 'bad.pth'))


# ---------------------------------------------------------------- configs
@pytest.mark.parametrize('name,exp', [
    (COCO_B, dict(classes=171, iters=80000, lr=1e-5, lrd=0.95, warmup=1500)),
    (ADE_B, dict(classes=150, iters=40000, lr=1e-5, lrd=0.9, warmup=1500)),
])
def test_variant_b_configs_follow_eva01(name, exp):
    """Official seg/configs/*relpos_layerscale_9dec.py and their logs (16 GPUs x 2)."""
    cfg = Config.fromfile(osp.join(SEG, name))
    vit = cfg.model.backbone.vit
    assert (vit.use_rel_pos_bias, vit.layer_scale_init_value, vit.img_size, vit.patch_size,
            vit.drop_path_rate, vit.with_cp) == (True, 1.0, 896, 16, 0.5, True)
    head = cfg.model.decode_head
    assert head.transformer_decoder.num_layers == 9 and head.pixel_decoder.encoder.num_layers == 6
    assert (head.num_classes, head.num_queries, len(head.loss_cls.class_weight)) == \
        (exp['classes'], 200, exp['classes'] + 1)
    opt = cfg.optim_wrapper
    assert (opt.optimizer.lr, opt.optimizer.weight_decay, opt.paramwise_cfg.layer_decay_rate) == \
        (exp['lr'], 0.05, exp['lrd'])
    assert opt.paramwise_cfg.custom_keys['decode_head.query_embed']['lr_mult'] == \
        pytest.approx(exp['lrd'] ** 41)
    assert cfg.train_cfg.max_iters == exp['iters'] and cfg.train_dataloader.batch_size == 2
    assert cfg.auto_scale_lr.base_batch_size == 32
    warm, poly = cfg.param_scheduler
    assert (warm.end, warm.start_factor, poly.end, poly.power) == \
        (exp['warmup'] + 1, 1e-6, exp['iters'] + 1, 1.0)
    assert cfg.model.test_cfg.crop_size == (896, 896) and cfg.model.test_cfg.pad_crops
    if name == ADE_B:
        assert cfg.load_from.split('/')[1] == COCO_B[:-3] and vit.init_cfg is None
        assert cfg.train_dataloader.dataset.type == 'ADE20KDataset'
        assert len(cfg.tta_pipeline[1].transforms[0]) == 7
    else:
        assert vit.init_cfg.checkpoint == 'checkpoints/eva/eva_psz14to16_mm.pth'
        assert cfg.train_dataloader.dataset.type == 'COCOStuffDataset'


def test_giant_variant_b_model_on_meta_device():
    """Full size: variant B = variant A + 40 x (12324 x 16 table + 2 x 1408 gammas) + one
    more mmdet Mask2Former decoder layer (2 x MHA 1024, FFN 4096, 3 LN)."""
    def n_params(m):
        return sum(p.numel() for p in m.parameters())

    with torch.device('meta'):
        a = build(Config.fromfile(osp.join(SEG, COCO_A)).model)
        b = build(Config.fromfile(osp.join(SEG, COCO_B)).model)
    d = 1024
    mha = 4 * d * d + 4 * d
    dec_layer = 2 * mha + (2 * d * 4096 + 4096 + d) + 3 * 2 * d
    assert dec_layer == 16_796_672
    assert n_params(b) - n_params(a) == 40 * (12324 * 16 + 2 * 1408) + dec_layer
    assert n_params(a) == 1_280_654_636 and n_params(b) == 1_305_451_308
    vit = b.backbone.vit
    assert tuple(vit.blocks[0].attn.relative_position_bias_table.shape) == (12324, 16)
    assert tuple(vit.blocks[0].attn.relative_position_index.shape) == (3137, 3137)
    assert tuple(vit.blocks[39].gamma_2.shape) == (1408, )
    assert len(b.decode_head.transformer_decoder.layers) == 9


def test_variant_b_short_training_learns_the_shapes():
    """30 AdamW steps of the tiny variant-B model on 8 drawn images: the loss falls by a
    third, the predicted maps segment the shapes, and the tables and gammas move."""
    from seg_training import overfit
    model = tiny_model()
    losses, before, after = overfit(model)
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first * 0.67, (first, last)
    assert before < 0.3 and after > 0.7, (before, after)
    blk = model.backbone.vit.blocks[0]
    assert blk.attn.relative_position_bias_table.detach().abs().max() > 1e-3
    assert (blk.gamma_1.detach() - 1).abs().max() > 1e-3
