"""A checkpoint is data, never code: every entry point that takes one reads it through the
one loader (projects/eva/loader.py) and refuses a pickle that would run code, in the zip and
the legacy (``_use_new_zipfile_serialization=False``) formats. The payload writes a marker
file; the marker must never appear. Zero-byte and random-bytes files are named everywhere,
and full unpickling happens only with the user's explicit opt-in."""
import importlib.util
import os
import os.path as osp

import pytest
import torch

from reliability_toy import toy_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs', 'demo')
CLS = osp.join(DEMO, 'eva-cls_vit-tiny-p14_1xb64-80e_digits.py')
DET = osp.join(DEMO, 'eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py')
CLIP = osp.join(DEMO, 'eva-clip_vit-tiny-p8_1xb64-6e_shapes-captions.py')
FORMATS = ('zip', 'legacy')


class Payload:
    """Unpickling this touches ``marker``: what a malicious checkpoint's ``os.system`` does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def _save(obj, path, fmt):
    torch.save(obj, str(path), _use_new_zipfile_serialization=fmt == 'zip')
    return str(path)


@pytest.fixture(params=FORMATS)
def evil(request, tmp_path):
    """(path of a malicious checkpoint with real-looking weights, marker path)."""
    marker = tmp_path / 'PAYLOAD_RAN'
    sd = {'fc.weight': torch.zeros(8, 8), 'fc.bias': torch.zeros(8)}
    path = _save({'state_dict': sd, 'meta': {'note': Payload(marker)}},
                 tmp_path / f'evil_{request.param}.pth', request.param)
    yield path, marker
    assert not marker.exists(), 'the checkpoint ran its payload'


def _refused(fn, path, marker, error=RuntimeError):
    with pytest.raises(error, match=r'refused to load .*%s: it pickles \[.*system.*\].*'
                       r'EVA_TRUST_CHECKPOINTS=1' % osp.basename(path)):
        fn()
    assert not marker.exists(), 'the checkpoint ran its payload'


def _tool(name, *parts):
    spec = importlib.util.spec_from_file_location(f'_eva_safety_{name}',
                                                  osp.join(ROOT, 'tools', *parts))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------ the loader
def test_loader_refuses_code_and_the_opt_in_is_explicit(evil, monkeypatch):
    from projects.eva.loader import read_checkpoint
    path, marker = evil
    _refused(lambda: read_checkpoint(path), path, marker)
    monkeypatch.setenv('EVA_TRUST_CHECKPOINTS', '1')  # the user says: I trust this file
    with pytest.warns(UserWarning, match='unpickling .* in full because EVA_TRUST_CHECKPOINTS'):
        read_checkpoint(path)
    assert marker.exists()  # with the opt-in it is unpickled: the opt-in is real
    marker.unlink()


def test_bad_files_are_named(tmp_path):
    from projects.eva.loader import read_checkpoint
    empty, junk = tmp_path / 'empty.pth', tmp_path / 'junk.pth'
    empty.write_bytes(b'')
    junk.write_bytes(os.urandom(4096).replace(b'PK', b'pk').lstrip(b'\x80') or b'x')
    cut = tmp_path / 'cut.pth'
    torch.save({'state_dict': {'w': torch.ones(1000)}}, str(cut))
    cut.write_bytes(cut.read_bytes()[:1500])
    with pytest.raises(ValueError, match=r'empty\.pth: empty file \(0 bytes\)'):
        read_checkpoint(str(empty))
    with pytest.raises(ValueError, match=r'junk\.pth: not a PyTorch checkpoint'):
        read_checkpoint(str(junk))
    with pytest.raises(ValueError, match=r'cannot load weights from .*cut\.pth: not a '
                                         r'complete checkpoint'):
        read_checkpoint(str(cut))
    with pytest.raises(IsADirectoryError, match='is a folder'):
        read_checkpoint(str(tmp_path))


def test_non_finite_weights_are_named_when_loaded(tmp_path):
    """issue 25 item 10: a NaN checkpoint was evaluated (accuracy 0, exit 0)."""
    from projects.eva.loader import read_checkpoint
    sd = {'a.weight': torch.ones(3), 'b.weight': torch.tensor([1., float('nan')]),
          'c.bias': torch.tensor([float('inf')])}
    path = str(tmp_path / 'nan.pth')
    torch.save({'state_dict': sd}, path)
    with pytest.raises(ValueError, match=r"nan\.pth: 2 weight tensor\(s\) hold NaN or inf "
                                         r"\(first: \['b\.weight', 'c\.bias'\]\)"):
        read_checkpoint(path)


def test_attention_masks_may_hold_inf_but_not_nan(tmp_path):
    """EVA-02-CLIP's released files keep open_clip's causal ``text.attn_mask`` (-inf above the
    diagonal): the converter refused every one of them as a diverged run."""
    from projects.eva.loader import read_checkpoint
    mask = torch.full((3, 3), float('-inf')).triu(1)
    path = str(tmp_path / 'clip.pth')
    torch.save({'text.attn_mask': mask, 'visual.weight': torch.ones(2)}, path)
    assert torch.equal(read_checkpoint(path)['text.attn_mask'], mask)
    torch.save({'text.attn_mask': mask.nan_to_num(nan=0.0).fill_(float('nan')),
                'visual.weight': torch.tensor([float('inf')])}, path)
    with pytest.raises(ValueError, match=r"2 weight tensor\(s\) hold NaN or inf \(first: "
                                         r"\['text\.attn_mask', 'visual\.weight'\]\)"):
        read_checkpoint(path)


# ------------------------------------------------------------------------ training / testing
def _runner(tmp_path, **kwargs):
    from projects.eva.runner import build_runner
    config = toy_config(tmp_path / 'toy.py', max_iters=5, interval=5)
    return build_runner(config, str(tmp_path / 'work'), no_validate=True, pin_memory=False,
                        **kwargs)


def test_train_load_from(evil, tmp_path):
    path, marker = evil
    runner = _runner(tmp_path, cfg_options={'load_from': path})
    _refused(runner.train, path, marker)


def test_train_resume_file(evil, tmp_path):
    path, marker = evil
    _refused(_runner(tmp_path, resume=path).train, path, marker)


def test_train_auto_resume_of_a_planted_checkpoint(evil, tmp_path):
    """A planted ``epoch_N.pth`` (a complete zip: past the truncation check) and plain
    ``--resume``: it used to load with a warning and train on, exit 0."""
    path, marker = evil
    work = tmp_path / 'work'
    work.mkdir()
    planted = work / 'iter_2.pth'
    planted.write_bytes(open(path, 'rb').read())
    (work / 'last_checkpoint').write_text(str(planted))
    if path.endswith('zip.pth'):
        _refused(_runner(tmp_path, resume='auto').train, str(planted), marker)
    else:  # auto-resume reads zip checkpoints only: a legacy pickle is skipped, named
        with pytest.raises(FileNotFoundError, match=r'iter_2\.pth \(not a complete PyTorch'):
            _runner(tmp_path, resume='auto').train()


TOY_TEST = ("test_dataloader = dict(batch_size=4, num_workers=0, collate_fn=dict("
            "type='pseudo_collate'), sampler=dict(type='DefaultSampler', shuffle=False), "
            "dataset=dict(type='_ToyData'))\ntest_cfg = dict()\n"
            "test_evaluator = dict(type='DumpResults', out_file_path='{}')\n")


def test_tools_test(evil, tmp_path):
    """tools/test.py, and mmengine's ``load_checkpoint`` (its local scheme is the loader)."""
    from mmengine.runner import load_checkpoint
    path, marker = evil
    _refused(lambda: load_checkpoint(torch.nn.Linear(8, 8), path), path, marker)
    config = toy_config(tmp_path / 'toy_test.py', extra=TOY_TEST.format(tmp_path / 'r.pkl'))
    tool = _tool('test', 'test.py')
    _refused(lambda: tool.main([config, path, '--work-dir', str(tmp_path / 'w')]), path,
             marker)


def test_init_cfg_pretrained_and_list_form(evil, tmp_path):
    from projects.eva.models.eva_vit import EVAViT
    path, marker = evil
    arch = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
    for init_cfg in (dict(type='Pretrained', checkpoint=path),
                     [dict(type='Pretrained', checkpoint=path)]):
        vit = EVAViT(arch, img_size=28, patch_size=14, init_cfg=init_cfg)
        _refused(vit.init_weights, path, marker)


def test_teacher_and_converter(evil):
    from projects.eva.converters import convert_checkpoint
    from projects.eva.models.clip_transformer import CLIPVisionTower
    path, marker = evil
    _refused(lambda: CLIPVisionTower(dict(width=32, layers=1, heads=2, patch_size=14,
                                          image_size=28, output_dim=16), checkpoint=path),
             path, marker)
    _refused(lambda: convert_checkpoint(path), path, marker)


# ------------------------------------------------------------------------ the door
def test_door_get_model_and_inference(evil, tmp_path):
    from projects.eva import get_model, list_models
    from projects.eva.apis import build_inferencer, build_model
    path, marker = evil
    _refused(lambda: build_model(CLS, path), path, marker)
    _refused(lambda: get_model(list_models()[0], checkpoint=path), path, marker)
    _refused(lambda: build_inferencer(CLS, path, device='cpu'), path, marker)
    image = osp.join(ROOT, 'tests', 'data', 'none.jpg')
    tool = _tool('inference', 'inference.py')
    _refused(lambda: tool.main([CLS, path, image, '--out-dir', str(tmp_path / 'o')]), path,
             marker)


def test_export_feature_maps_and_web_demo(evil, tmp_path):
    path, marker = evil
    export = _tool('export_onnx', 'deployment', 'export_onnx.py')
    _refused(lambda: export.main([CLS, path, str(tmp_path / 'm.onnx')]), path, marker)
    features = _tool('visualize_features', 'analysis_tools', 'visualize_features.py')
    _refused(lambda: features.main([CLS, path, 'img.png', '--out-dir', str(tmp_path)]), path,
             marker)
    demo = _tool('gradio_demo', 'gradio_demo.py')
    predictor = demo.Predictor({'classify': (CLS, path)})
    _refused(lambda: predictor.inferencer('classify'), path, marker)
