"""Detection data preprocessor that also pads test batches to a fixed square.

EVA-01 (ViTDet) pads every image to ``square_pad`` (1280 / 1536) at test time as in
training; mmdet applies ``batch_augments`` (``BatchFixedSizePad``) in training only.
"""
from typing import Optional, Sequence

import torch.nn.functional as F
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS


@MODELS.register_module()
class EVADetDataPreprocessor(DetDataPreprocessor):
    """``DetDataPreprocessor`` + ``test_pad_size=(h, w)``: test batches are padded (with the
    normalised value 0, as detectron2) to at least this size. A larger view (multi-scale TTA)
    keeps its own size per side: padding never crops."""

    def __init__(self, *args, test_pad_size: Optional[Sequence[int]] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.test_pad_size = tuple(test_pad_size) if test_pad_size else None

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data, training)
        if training or self.test_pad_size is None:
            return data
        inputs, samples = data['inputs'], data['data_samples']
        h, w = inputs.shape[-2:]
        dst_h, dst_w = max(h, self.test_pad_size[0]), max(w, self.test_pad_size[1])
        if (dst_h, dst_w) != (h, w):
            inputs = F.pad(inputs, (0, dst_w - w, 0, dst_h - h), value=0.)
            for sample in samples or []:
                sample.set_metainfo(dict(batch_input_shape=(dst_h, dst_w),
                                         pad_shape=(dst_h, dst_w)))
        return dict(inputs=inputs, data_samples=samples)
