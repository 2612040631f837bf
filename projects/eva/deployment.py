"""ONNX export of EVA models with ``torch.onnx`` (the dynamo exporter), and its check.

Used by ``tools/deployment/export_onnx.py`` (docs/deployment.md). What is exported depends on
the config's model (:func:`model_kind`):

* mmpretrain ``ImageClassifier`` -> ``logits`` (B, num_classes), before softmax;
* ``EVACLIP`` -> ``clip-image``: L2-normalised image embeddings (B, D); ``clip-text``: token
  ids (B, context_length) int64 -> L2-normalised text embeddings (B, D);
* mmdet detectors / mmseg segmentors -> the backbone + neck (``extract_feat``): ``feat0..N``;
* mmaction2 ``Recognizer3D`` -> ``video-classifier``: one normalised clip (B, 3, T, H, W) ->
  ``logits`` (B, num_classes) of that view, before softmax (the multi-view test averages
  the softmax of several clips / crops, which the runtime does over calls).

Inputs are *normalised* images (B, 3, H, W) or clips, as mmdeploy does it; the data preprocessor's
mean/std and channel order go into the ONNX ``metadata_props``. The model comes from the one
door, :func:`projects.eva.apis.build.build_model` (config + checkpoint -> eval model, every
weight checked), as for inference, the feature maps and the web demo.
"""
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from .apis.build import size_divisor, vit_of

KINDS = ('classifier', 'clip-image', 'clip-text', 'det-backbone', 'seg-backbone',
         'video-classifier')


def model_kind(model: nn.Module, part: Optional[str] = None) -> str:
    """Which of :data:`KINDS` a built model exports as."""
    name = type(model).__name__
    if name == 'EVACLIP':
        part = part or 'image'
        if part not in ('image', 'text'):
            raise ValueError(f'--part for EVA-CLIP is image or text, got {part!r}')
        return f'clip-{part}'
    if part is not None:
        raise ValueError(f'--part is for EVA-CLIP configs only (this model is {name})')
    from mmdet.models.detectors import BaseDetector
    from mmpretrain.models.classifiers import ImageClassifier
    from mmseg.models.segmentors import BaseSegmentor
    if isinstance(model, ImageClassifier):
        return 'classifier'
    if isinstance(model, BaseDetector):
        return 'det-backbone'
    if isinstance(model, BaseSegmentor):
        return 'seg-backbone'
    # a video model was built by mmaction2, which projects.eva.video imported (with the
    # placeholder its 1.2.0 wheel needs): no mmaction2 import here for the other tasks
    video = sys.modules.get('mmaction.models.recognizers')
    if video is not None and isinstance(model, video.Recognizer3D):
        return 'video-classifier'
    raise ValueError(f'no ONNX export for {name}: export a classifier, EVA-CLIP, an mmdet '
                     'detector, an mmseg segmentor or an mmaction2 Recognizer3D config')


# ---------------------------------------------------------------------- export wrappers
class ClassifierForExport(nn.Module):
    """Normalised image -> logits (mmpretrain ``mode='tensor'``)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        return self.model(image, mode='tensor')


class CLIPImageForExport(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        return self.model.encode_image(image)


class CLIPTextForExport(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens):
        return self.model.encode_text(tokens)


class FeaturesForExport(nn.Module):
    """Backbone + neck of a detector / segmentor (``extract_feat``), outputs as a tuple."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        return tuple(self.model.extract_feat(image))


class VideoClassifierForExport(nn.Module):
    """Normalised clip (B, 3, T, H, W) -> logits of that view: backbone + ``cls_head``, what
    ``Recognizer3D`` computes per view before it averages the views' softmax."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, clip):
        return self.model.cls_head(self.model.backbone(clip))


WRAPPERS = {'classifier': ClassifierForExport, 'clip-image': CLIPImageForExport,
            'clip-text': CLIPTextForExport, 'det-backbone': FeaturesForExport,
            'seg-backbone': FeaturesForExport, 'video-classifier': VideoClassifierForExport}


def default_shape(model: nn.Module, kind: str) -> Tuple[int, int]:
    if kind == 'clip-text':
        return (1, model.text.context_length)
    return tuple(vit_of(model).img_size)


def trace_shape(model: nn.Module, kind: str, shape: Tuple[int, int]) -> Tuple[int, int]:
    """An input size to trace a dynamic-H/W export at.

    The exporter records only the branches the example takes: at the model's own grid the
    position table is not resized and a grid that is a whole number of windows is not
    padded, and a graph traced there would lack the resize / padding for other sizes. So the
    example grid is moved (one patch at a time) off the position and rel-pos grids and off
    whole windows; resizing to the same grid and zero padding are identities, so the graph
    is exact at every size (checked in tests/deployment/test_export.py)."""
    vit = vit_of(model)
    step = size_divisor(model)
    ratio = step // vit.patch_size
    avoid = [set(), set()]
    for grid in (vit.pos_grid[-2:], vit.grid_size):
        for i in range(2):
            avoid[i].add(grid[i])
    windows = {blk.window_size for blk in vit.blocks if blk.window_size}
    out = []
    for i in range(2):
        g = max(shape[i] // vit.patch_size, ratio)
        g -= g % ratio
        while g in avoid[i] or any(g % w == 0 for w in windows) or (i == 1 and g * vit.patch_size == out[0]):
            g += ratio
        out.append(g * vit.patch_size)
    return tuple(out)


def example_input(model: nn.Module, kind: str, batch: int, shape: Tuple[int, int],
                  seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if kind == 'clip-text':
        return clip_tokens(model, batch, seed)
    if kind == 'video-classifier':
        return torch.randn(batch, 3, vit_of(model).num_frames, *shape, generator=gen)
    return torch.randn(batch, 3, *shape, generator=gen)


def clip_tokens(model, batch: int, seed: int = 0) -> torch.Tensor:
    """Real tokenised prompts of ``batch`` different lengths (end-of-text at varied places)."""
    words = ['a photo of a', 'red', 'circle', 'dog', 'in the snow', 'small', 'picture']
    texts = [' '.join(words[:1 + (seed + i) % len(words)]) for i in range(batch)]
    return model.tokenizer(texts)


def input_names(kind: str) -> List[str]:
    return {'clip-text': ['tokens'], 'video-classifier': ['clip']}.get(kind, ['image'])


def output_names(kind: str, num_outputs: int) -> List[str]:
    if kind in ('classifier', 'video-classifier'):
        return ['logits']
    if kind == 'clip-image':
        return ['image_embeds']
    if kind == 'clip-text':
        return ['text_embeds']
    return [f'feat{i}' for i in range(num_outputs)]


def metadata(model, kind: str, config: str, shape, dynamic_batch: bool,
             dynamic_hw: bool) -> Dict[str, str]:
    """What a runtime needs besides the graph: preprocessing, names, axes."""
    meta = dict(task=kind, config=osp.basename(config) if isinstance(config, str) else '',
                dynamic_batch=str(dynamic_batch), dynamic_hw=str(dynamic_hw))
    if kind == 'clip-text':
        meta['context_length'] = str(model.text.context_length)
        meta['tokenizer'] = 'CLIP BPE (projects.eva.clip.tokenizer.EVACLIPTokenizer)'
        return meta
    pre = model.data_preprocessor
    frames = [vit_of(model).num_frames] if kind == 'video-classifier' else []
    meta['input_shape'] = json.dumps([None if dynamic_batch else 1, 3, *frames,
                                      None if dynamic_hw else shape[0],
                                      None if dynamic_hw else shape[1]])
    if frames:
        meta['num_frames'] = str(frames[0])
    meta['mean'] = json.dumps([round(float(v), 6) for v in pre.mean.flatten()])
    meta['std'] = json.dumps([round(float(v), 6) for v in pre.std.flatten()])
    meta['channel_order'] = 'RGB' if getattr(pre, '_channel_conversion', False) or \
        getattr(pre, 'bgr_to_rgb', False) or getattr(pre, 'to_rgb', False) else 'as loaded'
    meta['size_multiple'] = str(size_divisor(model))
    classes = (getattr(model, 'dataset_meta', None) or {}).get('classes')
    if classes:
        meta['classes'] = json.dumps(list(classes))
    return meta


def _export_attention():
    """Biased attention as the plain materialised mask (``dense``, the reference path) while
    tracing: the memory-saving ``fold`` path builds one-hot position codes with ``idx % w``
    on a symbolic ``w``, which onnxscript cannot translate; inference numbers are the same."""
    from .models.attention import attention_method
    return attention_method('dense')


def export(model: nn.Module, out: str, kind: str, shape: Optional[Sequence[int]] = None,
           dynamic_batch: bool = False, dynamic_hw: Optional[bool] = None,
           opset: int = 18, config: str = '') -> dict:
    """Export ``model`` (built by :func:`projects.eva.apis.build.build_model`) to ``out``;
    returns the metadata."""
    from torch.export import Dim
    if kind not in KINDS:
        raise ValueError(f'kind must be one of {KINDS}, got {kind!r}')
    if dynamic_hw is None:  # detectors and segmentors take images of any size
        dynamic_hw = kind in ('det-backbone', 'seg-backbone')
    if kind == 'clip-text' and dynamic_hw:
        raise ValueError('--dynamic-hw is for image inputs; text has a fixed context length')
    if kind == 'video-classifier' and dynamic_hw:
        raise ValueError('--dynamic-hw is not for video: a clip is the trained T x H x W '
                         '(the position table tiles one spatial grid over the frames)')
    shape = tuple(shape) if shape else default_shape(model, kind)
    if kind != 'clip-text':
        mult = size_divisor(model)
        if shape[0] % mult or shape[1] % mult:
            raise ValueError(f'--shape {shape[0]} {shape[1]}: sides must be multiples of {mult}')
    wrapper = WRAPPERS[kind](model).eval()
    # batch 1 would be specialised by torch.export (0/1 sizes are); trace dynamic batches at 2
    batch = 2 if dynamic_batch else 1
    trace = trace_shape(model, kind, shape) if dynamic_hw else shape
    x = example_input(model, kind, batch, trace)
    axes = {}
    if dynamic_batch:
        axes[0] = Dim('batch', min=1, max=4096)
    if dynamic_hw:
        axes[x.ndim - 2], axes[x.ndim - 1] = Dim.DYNAMIC, Dim.DYNAMIC
    with torch.no_grad():
        outs = wrapper(x)
    num_outputs = len(outs) if isinstance(outs, tuple) else 1
    names_in, names_out = input_names(kind), output_names(kind, num_outputs)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with torch.no_grad(), _export_attention():
        program = torch.onnx.export(
            wrapper, (x, ), dynamo=True, opset_version=opset, input_names=names_in,
            output_names=names_out, dynamic_shapes={names_in[0]: axes} if axes else None,
            external_data=False, verbose=False)
    meta = metadata(model, kind, config, shape, dynamic_batch, dynamic_hw)
    meta['outputs'] = json.dumps(names_out)
    program.model.metadata_props.update(meta)
    program.save(out, external_data=False)
    return meta


# ---------------------------------------------------------------------- checking
def compare(model: nn.Module, onnx_file: str, kind: str, batch: int,
            shape: Tuple[int, int], seed: int = 1) -> float:
    """Max |onnxruntime - PyTorch| over all outputs on one random input."""
    import onnxruntime as ort
    wrapper = WRAPPERS[kind](model).eval()
    x = example_input(model, kind, batch, shape, seed)
    with torch.no_grad():
        ref = wrapper(x)
    ref = list(ref) if isinstance(ref, tuple) else [ref]
    sess = ort.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    if len(got) != len(ref):
        raise AssertionError(f'{onnx_file}: {len(got)} outputs, PyTorch gives {len(ref)}')
    worst = 0.
    for r, g in zip(ref, got):
        if tuple(r.shape) != g.shape:
            raise AssertionError(f'{onnx_file}: output shape {g.shape}, PyTorch '
                                 f'{tuple(r.shape)} (input {tuple(x.shape)})')
        worst = max(worst, float(np.abs(r.numpy() - g).max()))
    return worst


def verify_shapes(model, kind: str, shape, dynamic_batch: bool, dynamic_hw: bool):
    """(batch, (H, W)) pairs the export should work at: two batches / sizes when dynamic."""
    shape = tuple(shape)
    batches = [1, 3] if dynamic_batch else [1]
    sizes = [shape]
    if dynamic_hw:
        m = size_divisor(model)
        sizes.append((shape[0] + 2 * m, shape[1] + m))
    return [(b, s) for b in batches for s in sizes]
