"""ONNX export (tools/deployment/export_onnx.py): onnxruntime equals PyTorch (fp32, 1e-4).

Tiny versions of the demo configs (1-2 blocks) keep the exports fast; every model is
exported once (module fixtures) and run at two batch sizes, the backbones also at two input
sizes (dynamic H/W: the position table, rel-pos tables and window padding are resized at run
time inside the graph).
"""
import os.path as osp

import numpy as np
import pytest
import torch

pytest.importorskip('onnxruntime')

from projects.eva import deployment  # noqa: E402
from projects.eva.apis.build import CheckpointFitError, build_model  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs', 'demo')
CLS = osp.join(DEMO, 'eva-cls_vit-tiny-p14_1xb64-80e_digits.py')
CLIP = osp.join(DEMO, 'eva-clip_vit-tiny-p8_1xb64-6e_shapes-captions.py')
DET = osp.join(DEMO, 'eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py')
VIDEO = osp.join(DEMO, 'eva-video_vit-tiny-p14_1xb16-8e_moving-shapes.py')
TINY = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
ATOL = 1e-4

CASES = {
    'classifier': (CLS, {'model.backbone.arch': TINY, 'model.head.in_channels': 32}),
    'clip': (CLIP, {'model.vision_backbone.arch': TINY,
                    'model.text_backbone.layers': 1}),
    # one window block (window 4 on a 5x6 grid: padded) and one global block with rel-pos
    'det': (DET, {'model.backbone.arch': TINY, 'model.backbone.global_block_indices': [1],
                  'model.neck.in_channels': 32}),
    # 4 frames x 4 x 4 patches + cls: joint space-time attention over 65 tokens
    'video': (VIDEO, {'model.backbone.arch': TINY, 'model.backbone.num_frames': 4,
                      'model.cls_head.in_channels': 32}),
}


def _checkpoint(tmp_path_factory, name):
    """A random model of the case saved as a checkpoint, and the model loaded back from it
    through the tool's loader (what a user's converted checkpoint goes through)."""
    cfg, opts = CASES[name]
    torch.manual_seed(0)
    model = build_model(cfg, None, cfg_options=opts)
    _perturb(model)
    path = str(tmp_path_factory.mktemp(name) / 'model.pth')
    torch.save({'state_dict': model.state_dict()}, path)
    return path, build_model(cfg, path, cfg_options=opts)


def _perturb(model):
    """Zero-initialised rel-pos tables / q-v biases / layer scales would hide a wrong graph."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if 'rel_pos' in name or name.endswith(('q_bias', 'v_bias')):
                p.normal_(0, 0.2)


@pytest.fixture(scope='module')
def classifier(tmp_path_factory):
    ckpt, model = _checkpoint(tmp_path_factory, 'classifier')
    out = str(tmp_path_factory.mktemp('onnx') / 'cls.onnx')
    deployment.export(model, out, 'classifier', dynamic_batch=True, config=CLS)
    return model, out


@pytest.fixture(scope='module')
def clip_model(tmp_path_factory):
    return _checkpoint(tmp_path_factory, 'clip')[1]


@pytest.fixture(scope='module')
def det(tmp_path_factory):
    _, model = _checkpoint(tmp_path_factory, 'det')
    out = str(tmp_path_factory.mktemp('onnx') / 'det.onnx')
    meta = deployment.export(model, out, 'det-backbone', shape=(64, 64), dynamic_batch=True,
                             config=DET)
    return model, out, meta


@pytest.fixture(scope='module')
def video(tmp_path_factory):
    _, model = _checkpoint(tmp_path_factory, 'video')
    out = str(tmp_path_factory.mktemp('onnx') / 'video.onnx')
    meta = deployment.export(model, out, deployment.model_kind(model), dynamic_batch=True,
                             config=VIDEO)
    return model, out, meta


def test_video_classifier_matches_pytorch_and_mmaction(video, one_thread):
    """Per-clip logits at two batch sizes; their softmax is mmaction2's own prediction
    (``Recognizer3D`` predict, one view: averaging one view's softmax is that softmax)."""
    model, out, meta = video
    assert meta['task'] == 'video-classifier' and meta['num_frames'] == '4'
    assert eval(meta['input_shape'].replace('null', 'None')) == [None, 3, 4, 56, 56]
    for batch in (1, 3):
        assert deployment.compare(model, out, 'video-classifier', batch, (56, 56)) < ATOL
    import onnxruntime as ort
    from mmaction.structures import ActionDataSample
    clip = deployment.example_input(model, 'video-classifier', 2, (56, 56), seed=5)
    sess = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    logits = torch.from_numpy(sess.run(None, {'clip': clip.numpy()})[0])
    with torch.no_grad():
        preds = model(clip[:, None], [ActionDataSample() for _ in range(2)], mode='predict')
    ref = torch.stack([p.pred_score for p in preds])
    torch.testing.assert_close(logits.softmax(-1), ref, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match='not for video'):
        deployment.export(model, out + '.x', 'video-classifier', dynamic_hw=True)


def test_classifier_matches_pytorch_at_two_batch_sizes(classifier, one_thread):
    model, out = classifier
    for batch in (1, 3):
        assert deployment.compare(model, out, 'classifier', batch, (56, 56)) < ATOL


def test_classifier_metadata_and_names(classifier):
    import onnx
    model, out = classifier
    proto = onnx.load(out)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta['task'] == 'classifier'
    np.testing.assert_allclose(eval(meta['mean']), model.data_preprocessor.mean.flatten(),
                               rtol=1e-5)
    assert meta['channel_order'] == 'RGB'
    assert [o.name for o in proto.graph.output] == ['logits']
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch


@pytest.mark.parametrize('part', ['image', 'text'])
def test_clip_encoders_match_pytorch(clip_model, part, tmp_path, one_thread):
    kind = deployment.model_kind(clip_model, part)
    out = str(tmp_path / f'{part}.onnx')
    deployment.export(clip_model, out, kind, dynamic_batch=True, config=CLIP)
    for batch in (1, 3):
        assert deployment.compare(clip_model, out, kind, batch, (40, 40), seed=batch) < ATOL


def test_clip_text_tokens_really_vary(clip_model):
    """The text check is only meaningful if the prompts end at different positions."""
    tokens = deployment.clip_tokens(clip_model, 3, seed=1)
    assert len(set(tokens.argmax(-1).tolist())) == 3


def test_det_backbone_dynamic_batch_and_size(det, one_thread):
    """Two batch sizes x two input sizes, one of them the model's own grid (no resize)."""
    model, out, meta = det
    assert meta['dynamic_hw'] == 'True'
    for batch in (1, 2):
        for size in ((64, 64), (96, 80), (128, 128)):
            assert deployment.compare(model, out, 'det-backbone', batch, size) < ATOL
    import onnxruntime as ort
    sess = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    outs = sess.run(None, {'image': np.zeros((1, 3, 96, 80), np.float32)})
    assert [o.shape[-2:] for o in outs] == [(24, 20), (12, 10), (6, 5), (3, 2), (2, 1)]


def test_trace_shape_leaves_every_branch_in_the_graph(det):
    """The traced example is off the position grid, the rel-pos grid and whole windows."""
    model = det[0]
    vit = model.backbone
    h, w = deployment.trace_shape(model, 'det-backbone', tuple(vit.img_size))
    gh, gw = h // 16, w // 16
    assert gh != vit.grid_size[0] and gw != vit.grid_size[1] and gh != gw
    assert gh % 4 and gw % 4


@pytest.mark.slow  # starts a fresh Python (imports the whole stack)
def test_cli_export_and_verify(tmp_path, one_thread):
    import subprocess
    import sys
    cfg, opts = CASES['classifier']
    torch.manual_seed(0)
    model = build_model(cfg, None, cfg_options=opts)
    ckpt = str(tmp_path / 'm.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    out = str(tmp_path / 'cls.onnx')
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'deployment', 'export_onnx.py'), cfg, ckpt,
           out, '--verify', '--cfg-options', 'model.backbone.arch.embed_dims=32',
           'model.backbone.arch.num_layers=2', 'model.backbone.arch.num_heads=2',
           'model.backbone.arch.feedforward_channels=64', 'model.head.in_channels=32']
    res = subprocess.run(cmd, capture_output=True, text=True, env={**__import__('os').environ,
                                                                   'OMP_NUM_THREADS': '1'})
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert osp.isfile(out) and 'verify batch 1 size (56, 56)' in res.stdout


def test_missing_weights_are_an_error(tmp_path):
    cfg, opts = CASES['classifier']
    model = build_model(cfg, None, cfg_options=opts)
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith('head.')}
    ckpt = str(tmp_path / 'partial.pth')
    torch.save({'state_dict': sd}, ckpt)
    with pytest.raises(CheckpointFitError, match=r'partial\.pth does not fit the model '
                       r"ImageClassifier: 2 other parameter\(s\) are missing: \['head\.fc"):
        build_model(cfg, ckpt, cfg_options=opts)


def test_unsupported_part_and_kind():
    cfg, opts = CASES['classifier']
    model = build_model(cfg, None, cfg_options=opts)
    with pytest.raises(ValueError, match='--part'):
        deployment.model_kind(model, 'text')


@pytest.mark.slow  # ~70 s: the dynamo export of the adapter graph
def test_vit_adapter_exports_with_dynamic_batch_and_size(tmp_path, one_thread):
    """The ViT-Adapter (EVA-01 segmentation) once refused: its deformable attention read the
    level sizes from a tensor. With the sizes as ints it exports, exact at two batches x two
    sizes, neither of them the traced one."""
    seg = osp.join(DEMO, 'eva-mask2former_vit-tiny-adapter-p16_1xb8-160it_shapes-seg-128.py')
    torch.manual_seed(0)
    model = build_model(seg, None, cfg_options={'model.backbone.vit.arch.num_layers': 2,
                                              'model.backbone.interaction_indexes': [[0, 0],
                                                                                     [1, 1]]})
    with torch.no_grad():  # zero-init injector gammas / offset weights would hide a wrong
        # graph; larger offset weights (std 0.5) make the model itself ill-conditioned (fp32
        # vs fp64: 5e-3)
        for name, p in model.backbone.named_parameters():
            if name.endswith('gamma'):
                p.normal_(0, 0.5)
            elif 'sampling_offsets' in name or 'attention_weights' in name:
                p.normal_(0, 0.05)
    assert deployment.model_kind(model) == 'seg-backbone'
    out = str(tmp_path / 'adapter.onnx')
    meta = deployment.export(model, out, 'seg-backbone', dynamic_batch=True, config=seg)
    assert meta['dynamic_hw'] == 'True' and meta['size_multiple'] == '32'
    trace = deployment.trace_shape(model, 'seg-backbone', (128, 128))
    for batch, size in ((1, (128, 128)), (2, (96, 160))):
        assert size != trace
        assert deployment.compare(model, out, 'seg-backbone', batch, size) < ATOL
