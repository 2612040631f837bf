"""Mixed precision for detection on CPU.

mmcv 2.1's CPU kernels of ``nms`` and ``RoIAlign`` take fp32 only: ``--amp`` on a machine
without CUDA (fp16 autocast, or bf16 with ``tools/test.py --amp``) failed in the RPN with
``expected scalar type Float but found Half``. On GPUs the kernels take half precision and
nothing changes; on CPU the inputs of these two ops are upcast to fp32 and RoIAlign's output
is cast back, as autocast itself does for the ops it lists as fp32-only. Applied by
:func:`projects.eva.compat.apply` (``mmcv_cpu_amp``).
"""
import functools
import sys

import torch

LOW_PRECISION = (torch.float16, torch.bfloat16)


def _low_on_cpu(*tensors) -> bool:
    return any(isinstance(t, torch.Tensor) and t.device.type == 'cpu'
               and t.dtype in LOW_PRECISION for t in tensors)


def apply() -> None:
    import mmcv.ops  # noqa: F401
    nms_module = sys.modules['mmcv.ops.nms']
    roi_align_module = sys.modules['mmcv.ops.roi_align']
    if getattr(nms_module.nms, '_eva_cpu_amp', False):
        return
    nms = nms_module.nms
    roi_align = roi_align_module.roi_align

    @functools.wraps(nms)
    def nms_fp32_on_cpu(boxes, scores, *args, **kwargs):
        if not _low_on_cpu(boxes, scores):
            return nms(boxes, scores, *args, **kwargs)
        dets, inds = nms(boxes.float(), scores.float(), *args, **kwargs)
        return dets.to(boxes.dtype), inds

    @functools.wraps(roi_align)
    def roi_align_fp32_on_cpu(input, rois, *args, **kwargs):
        if not _low_on_cpu(input, rois):
            return roi_align(input, rois, *args, **kwargs)
        with torch.autocast('cpu', enabled=False):
            return roi_align(input.float(), rois.float(), *args, **kwargs).to(input.dtype)

    nms_fp32_on_cpu._eva_cpu_amp = True
    # ``batched_nms`` looks ``nms`` up in its module; ``RoIAlign.forward`` calls the module's
    # ``roi_align``; ``mmcv.ops.nms`` (the package attribute) is the function for later imports
    nms_module.nms = nms_fp32_on_cpu
    mmcv.ops.nms = nms_fp32_on_cpu
    roi_align_module.roi_align = roi_align_fp32_on_cpu
    mmcv.ops.roi_align = roi_align_fp32_on_cpu
