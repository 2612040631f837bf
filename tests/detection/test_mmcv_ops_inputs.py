"""Every tensor our models hand to an mmcv op is dense (docs/mmcv_ops_audit.md).

mmcv 2.1.0's compiled ops read ``data_ptr()`` as dense memory: ``roi_align`` (CPU and CUDA)
silently reads the wrong pixels from a strided map, the CUDA deformable attention asserts.
These tests record the arguments of the ops on the paths our configs take (detection train
and test, TTA merge; segmentation train and test with the deformable pixel decoder and
adapter) and require every tensor to be contiguous. On CPU the deformable attention runs
mmcv's PyTorch path: the tensors it receives are exactly those the CUDA op would get.
"""
import copy
import os.path as osp

import mmcv.ops.multi_scale_deform_attn as mmcv_msda
import pytest
import torch

import projects.eva.segmentation.ms_deform_attn as our_msda

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
pytestmark = pytest.mark.usefixtures('one_thread')


class Recorder:
    """Wraps ``mmcv._ext`` entry points (and the PyTorch deformable-attention path) and keeps
    ``(op, argument index, shape, strides)`` of every non-contiguous tensor argument."""

    EXT_OPS = ('roi_align_forward', 'nms', 'softnms')

    def __init__(self, monkeypatch):
        import importlib
        # the one compiled module every op calls into (``mmcv.ops.roi_align`` the attribute
        # is the function, hence the module lookup)
        ext = importlib.import_module('mmcv.ops.roi_align').ext_module
        self.calls, self.bad = {}, []
        for name in self.EXT_OPS:
            monkeypatch.setattr(ext, name, self._wrap(name, getattr(ext, name)))
        monkeypatch.setattr(mmcv_msda, 'multi_scale_deformable_attn_pytorch',
                            self._wrap('ms_deform_attn', mmcv_msda.multi_scale_deformable_attn_pytorch))
        # the adapter's CPU path (level sizes as ints): it gets the value, locations and
        # weights the CUDA op would get
        monkeypatch.setattr(our_msda, 'sample_levels',
                            self._wrap('ms_deform_attn', our_msda.sample_levels))

    def _wrap(self, name, fn):
        def wrapped(*args, **kwargs):
            self.calls[name] = self.calls.get(name, 0) + 1
            for i, a in enumerate(list(args) + list(kwargs.values())):
                if isinstance(a, torch.Tensor) and not a.is_contiguous():
                    self.bad.append((name, i, tuple(a.shape), a.stride()))
            return fn(*args, **kwargs)
        return wrapped


def test_detection_feeds_dense_tensors_to_mmcv_ops(monkeypatch):
    from test_detection import _build, _samples, _tiny_detector_cfg
    from mmdet.registry import MODELS
    cfg = _tiny_detector_cfg()
    # the COCO test configs' soft-NMS
    cfg.model.test_cfg.rcnn.nms = dict(type='soft_nms', iou_threshold=0.6, method='linear',
                                       min_score=1e-3)
    cfg.model.test_cfg.rcnn.score_thr = 0.0
    model = _build(cfg)
    rec = Recorder(monkeypatch)
    model.train()
    model.loss(torch.randn(2, 3, 64, 64), copy.deepcopy(_samples()))
    model.eval()
    with torch.no_grad():
        model.predict(torch.randn(2, 3, 64, 64), _samples())
        tta = MODELS.build(dict(type='EVADetTTAModel', module=model,
                                tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5),
                                             max_per_img=10)))
        img = torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
        tta.test_step(dict(inputs=[[img], [img.flip(-1)]],
                           data_samples=[_samples(1), _samples(1, flip=True)]))
    assert rec.calls.get('roi_align_forward', 0) > 6 and rec.calls.get('nms', 0) > 0 \
        and rec.calls.get('softnms', 0) > 0, rec.calls
    assert not rec.bad, rec.bad


def test_segmentation_feeds_dense_tensors_to_mmcv_ops(monkeypatch):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from projects.eva.apis.build import build_model  # builds in the config's scope
    torch.manual_seed(0)
    model = build_model(osp.join(ROOT, 'configs', 'demo', 'eva-mask2former_vit-tiny-adapter-'
                                'p16_1xb8-160it_shapes-seg-128.py'), None)
    rec = Recorder(monkeypatch)
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(128, 128), ori_shape=(128, 128),
                                        pad_shape=(128, 128)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, 128, 128)))
        samples.append(s)
    model.train()
    model.loss(torch.randn(2, 3, 128, 128), samples)
    model.eval()
    with torch.no_grad():
        model.predict(torch.randn(2, 3, 128, 128), copy.deepcopy(samples))
    # adapter injectors / extractors + the pixel decoder's encoder layers, train and test
    assert rec.calls.get('ms_deform_attn', 0) > 8, rec.calls
    assert not rec.bad, rec.bad
