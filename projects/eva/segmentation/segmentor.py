"""EncoderDecoder with EVA-01's sliding-window details for Mask2Former.

* Each window is decoded at its own size: mmseg's ``Mask2FormerHead.predict`` upsamples the
  masks to the image's ``pad_shape``, which in ``slide`` mode is the whole image, not the
  window; here the window's metadata say the window size.
* ``test_cfg.pad_crops=True``: windows smaller than ``crop_size`` (the short side of a
  down-scaled multi-scale test image) are zero-padded to ``crop_size`` and the padding is cut
  from the logits, so the ViT always sees its training grid (EVA-01's ``PadShortSide`` +
  ``EncoderDecoderMask2FormerAug``).
"""
from typing import List

import torch
import torch.nn.functional as F
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS


@MODELS.register_module()
class EVAEncoderDecoder(EncoderDecoder):
    """Also checks the ground-truth values of every batch (``checks.check_label_values``)."""

    def _check_labels(self, data_samples):
        from .checks import check_label_values
        pad = getattr(self.data_preprocessor, 'seg_pad_val', None)
        check_label_values(data_samples, self.num_classes,
                           getattr(self.decode_head, 'ignore_index', 255), pad)

    def loss(self, inputs, data_samples):
        self._check_labels(data_samples)
        return super().loss(inputs, data_samples)

    def _decode_head_forward_train(self, inputs, data_samples):
        """A forward pass that produced NaN / inf (fp16 overflow under ``--amp``, a diverged
        model) reached mmdet's Hungarian matcher and failed in scipy with "matrix contains
        invalid numeric entries"; every other task stops with a ``FloatingPointError``."""
        try:
            return super()._decode_head_forward_train(inputs, data_samples)
        except ValueError as e:
            if 'invalid numeric entries' not in str(e):
                raise
            from mmengine.logging import MessageHub
            it = MessageHub.get_current_instance().get_info('iter')
            where = f'iteration {it + 1}' if isinstance(it, int) else 'this batch'
            bad = [i for i, x in enumerate(inputs) if not bool(torch.isfinite(x).all())]
            origin = (f'the backbone features (levels {bad}) hold NaN/inf' if bad else
                      'the decode head produced NaN/inf from finite backbone features')
            raise FloatingPointError(
                f'non-finite predictions at {where}: {origin}, so the Mask2Former matching '
                f'cost is not finite ({e}). Under --amp the fp16 forward pass overflowed or '
                'training diverged: lower the learning rate, clip gradients, or use bf16 '
                '(optim_wrapper.dtype=bfloat16).') from e

    def predict(self, inputs, data_samples=None):
        self._check_labels(data_samples)
        return super().predict(inputs, data_samples)

    def encode_decode(self, inputs: torch.Tensor, batch_img_metas: List[dict]) -> torch.Tensor:
        if self.test_cfg.get('mode', 'whole') != 'slide':
            return super().encode_decode(inputs, batch_img_metas)
        h, w = inputs.shape[-2:]
        if self.test_cfg.get('pad_crops', False):
            crop_h, crop_w = self.test_cfg.crop_size
            inputs = F.pad(inputs, (0, max(crop_w - w, 0), 0, max(crop_h - h, 0)))
        size = tuple(inputs.shape[-2:])
        metas = [dict(m, img_shape=size, pad_shape=size) for m in batch_img_metas]
        logits = self.decode_head.predict(self.extract_feat(inputs), metas, self.test_cfg)
        return logits[..., :h, :w]
