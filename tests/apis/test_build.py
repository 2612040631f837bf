"""The one door (projects/eva/apis/build.py): the structural fit rule, the class check, the
backbone protocol, list-form ``init_cfg``, bad files named at every entry point, and tasks
side by side in one process."""
import os.path as osp

import pytest
import torch
import torch.nn as nn

from projects.eva.apis.build import (CheckpointFitError, build_model, check_classes, check_fit,
                                     size_divisor, strip_pretrained, vit_of)
from projects.eva.models.eva_vit import EVAViT

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs', 'demo')
CLS = osp.join(DEMO, 'eva-cls_vit-tiny-p14_1xb64-80e_digits.py')
DET = osp.join(DEMO, 'eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py')
SEG = osp.join(DEMO, 'eva-mask2former_vit-tiny-adapter-p16_1xb8-160it_shapes-seg-128.py')
EVA01 = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)
EVA02 = dict(EVA01, mlp_type='swiglu', sub_ln=True, rope=True)


class Classifier(nn.Module):
    def __init__(self, arch=EVA01, classes=5):
        super().__init__()
        self.backbone = EVAViT(arch, img_size=28, patch_size=14)
        self.head = nn.Linear(32, classes)


def _sd(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_a_half_fitting_checkpoint_is_refused_naming_the_groups():
    """An EVA-02 (SwiGLU, sub-LN, RoPE) backbone into an EVA-01 classifier: most tensors
    share names and shapes, no attention / MLP weight is there -- a share-of-tensors rule let
    this through."""
    model = Classifier()
    other = {f'backbone.{k}': v for k, v in EVAViT(EVA02, img_size=28, patch_size=14)
             .state_dict().items()}
    shared = [k for k in model.state_dict() if k in other]
    assert len(shared) > len(model.state_dict()) / 2  # the old 50 % rule passed it
    with pytest.raises(CheckpointFitError, match=r"ckpt does not fit the model Classifier: "
                       r"6 of the 6 structural groups \(attention / MLP weights of each "
                       r"transformer block\) are missing: \['backbone\.blocks\.0\.attn', "
                       r"'backbone\.blocks\.0\.mlp', 'backbone\.blocks\.1\.attn', "):
        check_fit(model, other, 'ckpt', head='optional')


def test_the_head_is_required_except_for_a_backbone_init():
    model = Classifier()
    sd = _sd(Classifier(classes=7))  # another dataset's head
    check_fit(model, sd, 'ckpt', head='optional')
    with pytest.raises(CheckpointFitError, match=r"2 tensor\(s\) of another shape: "
                       r"\['head\.weight: checkpoint \(7, 32\) vs model \(5, 32\)'"):
        check_fit(model, sd, 'ckpt', head='required')
    no_head = {k: v for k, v in _sd(model).items() if not k.startswith('head.')}
    with pytest.raises(CheckpointFitError, match=r"2 other parameter\(s\) are missing: "
                       r"\['head\.weight', 'head\.bias'\]"):
        check_fit(model, no_head, 'ckpt', head='required')
    partial = {k: v for k, v in _sd(model).items() if '.blocks.1.attn.' not in k}
    with pytest.raises(CheckpointFitError, match=r"missing: \['backbone\.blocks\.1\.attn'\]"):
        check_fit(model, partial, 'ckpt', head='optional')
    check_fit(model, _sd(model), 'ckpt', head='required')


def test_another_resolution_fits():
    """Tensors EVAViT's load hook resizes (position table) are not shape errors."""
    small = Classifier()
    big = Classifier()
    big.backbone = EVAViT(EVA01, img_size=56, patch_size=14)
    check_fit(small, _sd(big), 'ckpt', head='required')


def test_classes_compared_and_named():
    check_classes(['cat', 'dog'], ['cat', 'dog'], 'ckpt', 'the test dataset')
    check_classes(None, ['cat'], 'ckpt', 'the test dataset')
    with pytest.raises(CheckpointFitError, match=r"ckpt was trained on 3 classes \['0', '1', "
                       r"'3'\], but the test dataset has 3 classes \['0', '1', 'three'\] "
                       r"\(first difference at index 2: '3' vs 'three'\)"):
        check_classes(['0', '1', '3'], ['0', '1', 'three'], 'ckpt', 'the test dataset')


@pytest.mark.parametrize('form', ['dict', 'list'])
def test_init_cfg_pretrained_dict_and_list_form(form, tmp_path):
    """mmengine documents a list of init configs; EVAViT.init_weights crashed on it."""
    torch.manual_seed(0)
    src = Classifier()
    path = str(tmp_path / 'pre.pth')
    torch.save({'state_dict': src.state_dict()}, path)
    init = dict(type='Pretrained', checkpoint=path, prefix='backbone.')
    vit = EVAViT(EVA01, img_size=28, patch_size=14,
                 init_cfg=init if form == 'dict' else [init])
    vit.init_weights()
    for k, v in vit.state_dict().items():
        torch.testing.assert_close(v, src.backbone.state_dict()[k], msg=k)


def test_init_cfg_of_another_generation_is_an_error(tmp_path):
    """EVA-01 MIM weights into an EVA-02 backbone: an error, not a warning."""
    path = str(tmp_path / 'eva01.pth')
    torch.save({'state_dict': EVAViT(EVA01, img_size=28, patch_size=14).state_dict()}, path)
    vit = EVAViT(EVA02, img_size=28, patch_size=14,
                 init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointFitError, match=r'eva01\.pth \(init_cfg=Pretrained\) does '
                       r'not fit the model EVAViT: 6 of the 6 structural groups'):
        vit.init_weights()


def test_strip_pretrained_dict_list_and_weight_files():
    cfg = dict(backbone=dict(init_cfg=[dict(type='Pretrained', checkpoint='a.pth'),
                                       dict(type='Constant', val=1)]),
               teacher=dict(checkpoint='clip.pt'), text=dict(pretrained='t.pt'),
               neck=dict(init_cfg=dict(type='Pretrained', checkpoint='b.pth')))
    strip_pretrained(cfg)
    assert cfg == dict(backbone=dict(init_cfg=[dict(type='Constant', val=1)]),
                       teacher=dict(checkpoint=None), text=dict(pretrained=None),
                       neck=dict(init_cfg=None))


def test_backbone_protocol():
    cls = build_model(CLS, device='meta')
    seg = build_model(SEG, device='meta')
    assert vit_of(cls) is cls.backbone and size_divisor(cls) == 14
    assert vit_of(seg) is seg.backbone.vit and size_divisor(seg) == 32


@pytest.mark.parametrize('bad', ['empty', 'random'])
def test_bad_files_named_at_every_entry_point(bad, tmp_path):
    from mmengine.runner import load_checkpoint

    from projects.eva.converters import convert_checkpoint
    path = tmp_path / f'{bad}.pth'
    path.write_bytes(b'' if bad == 'empty' else b'\x13\x37' + bytes(range(200)))
    match = (r'empty\.pth: empty file \(0 bytes\)' if bad == 'empty' else
             r'random\.pth: not a PyTorch checkpoint')
    vit = EVAViT(EVA01, img_size=28, patch_size=14,
                 init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    for entry in (lambda: build_model(CLS, str(path)),
                  lambda: load_checkpoint(nn.Linear(2, 2), str(path)),  # load_from, test
                  vit.init_weights, lambda: convert_checkpoint(str(path))):
        with pytest.raises(ValueError, match=match):
            entry()


def test_a_checkpoint_of_another_task_is_refused_by_the_door(tmp_path):
    """Inference, export and feature maps loaded a classification checkpoint into the
    detection config (0 % of it) and wrote predictions, exit 0."""
    torch.manual_seed(0)
    path = str(tmp_path / 'cls.pth')
    torch.save({'state_dict': build_model(CLS).state_dict()}, path)
    # same tiny backbone: the blocks fit, the detector's neck and heads are missing
    with pytest.raises(CheckpointFitError, match=r'cls\.pth does not fit the model '
                       r'CascadeRCNN: 150 other parameter\(s\) are missing: .*'
                       r"model key prefixes: \{'roi_head': 102"):
        build_model(DET, path)


def test_checkpoint_classes_against_the_config(tmp_path):
    """A checkpoint that names its classes is compared with the config's dataset."""
    from mmengine.config import Config
    torch.manual_seed(0)
    model = build_model(DET)
    classes = list(Config.fromfile(DET).test_dataloader.dataset.metainfo.classes)
    path = str(tmp_path / 'det.pth')
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': {'classes': classes[::-1]}}}, path)
    with pytest.raises(CheckpointFitError, match=r'det\.pth was trained on'):
        build_model(DET, path)
    assert build_model(DET, path, classes=['a'] * len(classes)).dataset_meta['classes'][0] \
        == 'a'


def test_weights_from_the_config_or_from_the_checkpoint(tmp_path):
    """``weights='config'`` initialises as training does (the config's init_cfg file, read by
    the loader); the default reads no file the config names."""
    torch.manual_seed(0)
    src = build_model(CLS)
    path = str(tmp_path / 'pre.pth')
    torch.save({'state_dict': src.state_dict()}, path)
    opts = {'model.backbone.init_cfg': dict(_delete_=True, type='Pretrained',
                                            checkpoint=path, prefix='backbone.')}
    key = 'backbone.blocks.0.attn.proj.weight'
    loaded = build_model(CLS, weights='config', cfg_options=opts)
    torch.testing.assert_close(loaded.state_dict()[key], src.state_dict()[key])
    fresh = build_model(CLS, cfg_options=dict(opts, **{
        'model.backbone.init_cfg.checkpoint': str(tmp_path / 'absent.pth')}))
    assert not torch.equal(fresh.state_dict()[key], src.state_dict()[key])
