"""Classification: EVA-01 layer decay, heads, robustness datasets/metric, resolution change."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import DATASETS, MODELS
from mmpretrain.structures import DataSample
from PIL import Image

import projects.eva.classification  # noqa: F401
from projects.eva.classification.datasets import imagenet1k_wnids
from projects.eva.classification.metrics import RobustAccuracy

ARCH = dict(embed_dims=48, num_layers=4, num_heads=3, feedforward_channels=96)


def classifier(img_size=56, **backbone):
    cfg = dict(type='EVAViT', arch=ARCH, img_size=img_size, out_type='avg_featmap',
               final_norm=False, freeze_patch_embed=True)
    cfg.update(backbone)
    return MODELS.build(dict(type='ImageClassifier', backbone=cfg,
                             head=dict(type='EVAClsHead', num_classes=10, in_channels=48)))


def test_layer_decay_groups_follow_eva01():
    model = classifier()
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
        constructor='EVALayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.5, no_decay_1d=True,
                           no_decay_keys=('pos_embed', 'cls_token'))))
    groups = {g['param_name']: g for g in wrapper.optimizer.param_groups}
    # 4 blocks -> ids 0..5; scale = 0.5 ** (5 - id)
    assert groups['backbone.pos_embed']['lr'] == pytest.approx(0.5 ** 5)
    assert groups['backbone.cls_token']['lr'] == pytest.approx(0.5 ** 5)
    assert groups['backbone.blocks.0.attn.qkv.weight']['lr'] == pytest.approx(0.5 ** 4)
    assert groups['backbone.blocks.3.mlp.fc2.weight']['lr'] == pytest.approx(0.5 ** 1)
    assert groups['backbone.fc_norm.weight']['lr'] == pytest.approx(1.0)
    assert groups['head.fc.weight']['lr'] == pytest.approx(1.0)
    # frozen patch embedding is not optimised at all (EVA-01 stop_grad_conv1)
    assert not any(n.startswith('backbone.patch_embed') for n in groups)
    # no decay on 1-D params, biases, q/v bias, pos_embed and cls_token; decay elsewhere
    for name in ('backbone.pos_embed', 'backbone.cls_token', 'backbone.blocks.0.attn.q_bias',
                 'backbone.blocks.0.norm1.weight', 'head.fc.bias'):
        assert groups[name]['weight_decay'] == 0, name
    assert groups['backbone.blocks.0.attn.qkv.weight']['weight_decay'] == 0.05
    assert groups['head.fc.weight']['weight_decay'] == 0.05
    # detection's rule: decay everything
    det = build_optim_wrapper(model, dict(
        optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.1),
        constructor='EVALayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.9, no_decay_1d=False)))
    assert all(g['weight_decay'] == 0.1 for g in det.optimizer.param_groups)


def test_eva_head_init_scale():
    torch.manual_seed(0)
    head = MODELS.build(dict(type='EVAClsHead', num_classes=1000, in_channels=256))
    head.init_weights()
    w = head.fc.weight
    # timm-style trunc_normal_(std=0.02) cuts at +-2 *absolute*, i.e. a plain N(0, 0.02),
    # then x0.001 (EVA-01 head init_scale)
    assert w.std().item() == pytest.approx(0.02 * 0.001, rel=0.03)
    assert w.mean().abs().item() < 1e-6
    assert torch.all(head.fc.bias == 0)


def test_linear_probe_trains_only_the_head():
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='EVAViT', arch=ARCH, img_size=56, out_type='cls_token',
                      final_norm=True, frozen_stages=4),
        head=dict(type='EVALinearProbeHead', num_classes=10, in_channels=48)))
    model.init_weights()
    model.train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {'head.fc.weight', 'head.fc.bias'}
    assert not model.head.bn.affine and model.head.bn.eps == 1e-6
    assert model.head.fc.weight.std().item() == pytest.approx(0.01, rel=0.2)
    assert model(torch.randn(4, 3, 56, 56), mode='tensor').shape == (4, 10)


def test_pretrained_224_checkpoint_loads_at_336_with_resized_pos_embed(tmp_path):
    torch.manual_seed(0)
    small = classifier(img_size=56)
    small.init_weights()
    path = str(tmp_path / 'cls56.pth')
    torch.save({'state_dict': small.state_dict()}, path)
    big = classifier(img_size=84, init_cfg=dict(type='Pretrained', checkpoint=path,
                                                prefix='backbone.'))
    big.init_weights()
    assert big.backbone.pos_embed.shape == (1, 1 + 36, 48)
    torch.testing.assert_close(big.backbone.blocks[2].mlp.fc1.weight,
                               small.backbone.blocks[2].mlp.fc1.weight)
    torch.testing.assert_close(big.backbone.pos_embed[:, 0], small.backbone.pos_embed[:, 0])


def _scored(score, label=None, **extra):
    ds = DataSample().set_pred_score(torch.tensor(score, dtype=torch.float))
    if label is not None:
        ds.set_gt_label(label)
    d = ds.to_dict()
    d.update(extra)
    return d


def test_robust_accuracy_rules():
    # IN-A/R: argmax restricted to the subset
    metric = RobustAccuracy()
    metric.dataset_meta = dict(class_subset=[1, 3])
    metric.process(None, [_scored([9, 1, 0, 2], 3),    # 0 is outside the subset: predicts 3
                          _scored([0, 5, 0, 2], 3)])   # predicts 1: wrong
    assert metric.evaluate(2) == {'robust/top1': 50.0}
    # ReaL: any of the labels; unlabelled images skipped
    metric = RobustAccuracy()
    metric.process(None, [_scored([0, 1, 0], -1, real_labels=[1, 2]),
                          _scored([1, 0, 0], -1, real_labels=[1, 2]),
                          _scored([1, 0, 0], -1, real_labels=[])])
    assert metric.evaluate(3) == {'robust/top1': 50.0}
    # ObjectNet: max over each class's IN-1K indices
    metric = RobustAccuracy()
    metric.dataset_meta = dict(objectnet_groups=[[0, 1], [2]])
    metric.process(None, [_scored([0.1, 0.9, 0.5], 0), _scored([0.1, 0.2, 0.5], 0)])
    assert metric.evaluate(2) == {'robust/top1': 50.0}


def _img(path):
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)


def test_imagenet_variant_layouts(tmp_path):
    wnids = imagenet1k_wnids()
    assert len(wnids) == 1000 and wnids[0] == 'n01440764' and wnids == sorted(wnids)
    # IN-V2: folders named by class index
    for c in (0, 7, 999):
        _img(str(tmp_path / 'v2' / str(c) / 'a.jpeg'))
    ds = DATASETS.build(dict(type='ImageNetVariant', variant='v2', data_root=str(tmp_path / 'v2')))
    assert sorted(ds.get_data_info(i)['gt_label'] for i in range(len(ds))) == [0, 7, 999]
    # IN-A: wnid folders, a 200-class subset in IN-1K index space
    for w in (wnids[5], wnids[300]):
        _img(str(tmp_path / 'a' / w / 'x.jpg'))
    ds = DATASETS.build(dict(type='ImageNetVariant', variant='a', data_root=str(tmp_path / 'a')))
    assert ds.metainfo['class_subset'] == [5, 300]
    assert [ds.get_data_info(i)['gt_label'] for i in range(2)] == [5, 300]
    _img(str(tmp_path / 'bad' / 'not_a_wnid' / 'x.jpg'))
    with pytest.raises(ValueError, match='not IN-1K synsets'):
        DATASETS.build(dict(type='ImageNetVariant', variant='r', data_root=str(tmp_path / 'bad')))
    # ReaL: flat val images + real.json in file order
    for i in (1, 2):
        _img(str(tmp_path / 'in' / 'val' / f'ILSVRC2012_val_{i:08d}.JPEG'))
    (tmp_path / 'in' / 'real.json').write_text(json.dumps([[3, 4], []]))
    ds = DATASETS.build(dict(type='ImageNetVariant', variant='real', data_root=str(tmp_path / 'in')))
    assert [ds.get_data_info(i)['real_labels'] for i in range(2)] == [[3, 4], []]
    # ObjectNet: only classes that map to IN-1K are scored
    on = tmp_path / 'objectnet'
    _img(str(on / 'images' / 'air_freshener' / 'a.png'))
    _img(str(on / 'images' / 'alarm_clock' / 'b.png'))
    os.makedirs(on / 'mappings')
    (on / 'mappings' / 'folder_to_objectnet_label.json').write_text(json.dumps(
        {'air_freshener': 'Air freshener', 'alarm_clock': 'Alarm clock'}))
    (on / 'mappings' / 'objectnet_to_imagenet_1k.json').write_text(json.dumps(
        {'Alarm clock': 'analog clock; digital clock'}))
    names = [f'class{i}' for i in range(1000)]
    names[409], names[530] = 'analog clock', 'digital clock'
    (on / 'mappings' / 'imagenet_to_label_2012_v2').write_text('\n'.join(names))
    ds = DATASETS.build(dict(type='ImageNetVariant', variant='objectnet', data_root=str(on)))
    assert len(ds) == 1 and ds.metainfo['objectnet_groups'] == [[409, 530]]
    with pytest.raises(FileNotFoundError, match='root not found'):
        DATASETS.build(dict(type='ImageNetVariant', variant='sketch',
                            data_root=str(tmp_path / 'nowhere')))
