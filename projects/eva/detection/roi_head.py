"""mmdet's Cascade RoI head with EVA-01's test-time scoring.

* The class scores of the three stages are averaged as **probabilities** (detectron2 /
  EVA-01); mmdet averages logits. The average goes on to mmdet's bbox head as the inverse of
  its activation (log for softmax, logit for sigmoid), so the head's own post-processing
  (score threshold, NMS / soft-NMS, top-k) reads exactly the averaged probabilities.
* Maskness rescoring (SOLO): ``score *= mean(p | p > thr)`` over the instance's 28x28 mask
  probabilities, with ``thr = maskness_thresh`` (0.5 for COCO segm and LVIS).
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.roi_heads import CascadeRoIHead
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi, get_box_tensor
from mmdet.models.utils import empty_instances
from torch import Tensor

from .layers import dense_nchw


def maskness(mask_probs: Tensor, thresh: float = 0.5) -> Tensor:
    """Mean probability of the pixels above ``thresh`` per mask (N, H, W) -> (N,); 0 for
    masks with no such pixel."""
    binary = (mask_probs > thresh).to(mask_probs.dtype)
    area = binary.flatten(1).sum(1)
    total = (mask_probs * binary).flatten(1).sum(1)
    return torch.where(area > 0, total / area.clamp_min(1), torch.zeros_like(total))


class _ScaleGrad(torch.autograd.Function):
    """Identity forward, gradient times ``scale`` backward."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


@MODELS.register_module()
class EVACascadeRoIHead(CascadeRoIHead):
    """``CascadeRoIHead`` + probability averaging over stages + maskness rescoring.

    Args:
        score_average: ``prob`` (EVA-01 / detectron2) or ``logit`` (mmdet's default).
        maskness_thresh: None (off) or the mask-probability threshold for rescoring.
        stage_grad_scale: scale the gradient entering each stage's box head by
            1 / num_stages (detectron2's cascade; use with ``stage_loss_weights=[1, 1, 1]``).
    """

    def __init__(self, *args, score_average: str = 'prob',
                 maskness_thresh: Optional[float] = None, stage_grad_scale: bool = True,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.stage_grad_scale = stage_grad_scale
        if score_average not in ('prob', 'logit'):
            raise ValueError(f"score_average must be 'prob' or 'logit', got {score_average!r}")
        self.score_average = score_average
        self.maskness_thresh = maskness_thresh

    # ------------------------------------------------------------------ boxes
    def _bbox_forward(self, stage: int, x: Tuple[Tensor], rois: Tensor) -> dict:
        roi_extractor, head = self.bbox_roi_extractor[stage], self.bbox_head[stage]
        # mmcv's roi_align ignores strides: hand it dense NCHW maps whatever the neck gave
        feats = roi_extractor(dense_nchw(x[:roi_extractor.num_inputs]), rois)
        if self.stage_grad_scale and self.training:
            feats = _ScaleGrad.apply(feats, 1.0 / self.num_stages)
        cls_score, bbox_pred = head(feats)
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=feats)

    @staticmethod
    def _activate(head, cls_score: Tensor) -> Tensor:
        if head.custom_activation:
            return head.loss_cls.get_activation(cls_score)
        return F.softmax(cls_score, dim=-1)

    @staticmethod
    def _deactivate(head, probs: Tensor) -> Tensor:
        if head.custom_activation:
            inverse = getattr(head.loss_cls, 'inverse_activation', None)
            if inverse is None:
                raise TypeError(f'{type(head.loss_cls).__name__} has no inverse_activation; '
                                "use score_average='logit' with this loss")
            return inverse(probs)
        return probs.clamp_min(1e-12).log()

    def _refine_roi(self, x: Tuple[Tensor], rois: Tensor, batch_img_metas: List[dict],
                    num_proposals_per_img: Sequence[int], **kwargs) -> tuple:
        if self.score_average == 'logit':
            return super()._refine_roi(x, rois, batch_img_metas, num_proposals_per_img,
                                       **kwargs)
        probs_per_stage = []
        for stage in range(self.num_stages):
            head = self.bbox_head[stage]
            results = self._bbox_forward(stage=stage, x=x, rois=rois, **kwargs)
            probs = self._activate(head, results['cls_score'])
            bbox_pred = results['bbox_pred']
            probs_per_stage.append(probs)
            if stage < self.num_stages - 1:
                labels = probs[:, :-1].argmax(dim=1)
                refined = []
                for i, (r, l, d) in enumerate(zip(rois.split(num_proposals_per_img),
                                                  labels.split(num_proposals_per_img),
                                                  bbox_pred.split(num_proposals_per_img))):
                    if len(r):
                        boxes = get_box_tensor(head.regress_by_class(r[:, 1:], l, d,
                                                                     batch_img_metas[i]))
                        refined.append(torch.cat([r[:, :1], boxes], dim=1))
                rois = torch.cat(refined)
        mean_probs = sum(probs_per_stage) / self.num_stages
        scores = self._deactivate(self.bbox_head[-1], mean_probs)
        return (rois.split(num_proposals_per_img),
                list(scores.split(num_proposals_per_img)),
                bbox_pred.split(num_proposals_per_img))

    def predict(self, x, rpn_results_list, batch_data_samples, rescale: bool = False):
        """mmdet's predict; boxes and scores leave in fp32. Under bf16 autocast (CPU,
        ``tools/test.py --amp``) they were bf16 tensors, which numpy (the COCO metric) cannot
        take: ``Got unsupported ScalarType BFloat16``."""
        results_list = super().predict(x, rpn_results_list, batch_data_samples, rescale)
        for res in results_list:
            for key in ('bboxes', 'scores'):
                value = res.get(key)
                if isinstance(value, Tensor) and value.dtype in (torch.float16, torch.bfloat16):
                    setattr(res, key, value.float())
        return results_list

    # ------------------------------------------------------------------ masks
    def _mask_forward(self, stage: int, x: Tuple[Tensor], rois: Tensor) -> dict:
        """mmdet's, on dense NCHW maps (mmcv's roi_align ignores strides)."""
        return super()._mask_forward(stage, dense_nchw(x), rois)

    def mask_probs(self, x: Tuple[Tensor], mask_rois: Tensor, labels: Tensor) -> Tensor:
        """Sigmoid probabilities (R, 1, 28, 28) of each RoI's own class channel, averaged
        over the stages' mask heads (identical heads after converting EVA-01's single head,
        see the converter); keeping one channel saves memory with 1203 LVIS classes."""
        total = 0
        for stage in range(self.num_stages):
            preds = self._mask_forward(stage, x, mask_rois)['mask_preds']
            if preds.shape[1] > 1:
                preds = preds[torch.arange(len(preds), device=preds.device), labels][:, None]
            total = total + preds.sigmoid()
        return total / self.num_stages

    def rescore_by_maskness(self, results, mask_probs: Tensor):
        """Multiply ``results.scores`` by the maskness of each instance's (R, 1, h, w) mask."""
        if self.maskness_thresh is not None and len(results):
            results.scores = results.scores * maskness(mask_probs[:, 0], self.maskness_thresh)
        return results

    def paste_masks(self, mask_probs: Tensor, results, img_meta: dict, rescale: bool):
        """Paste (R, 1, h, w) probabilities into image masks with mmdet's mask head."""
        results.masks = self.mask_head[-1]._predict_by_feat_single(
            mask_preds=mask_probs, bboxes=results.bboxes,
            labels=torch.zeros_like(results.labels), img_meta=img_meta,
            rcnn_test_cfg=self.test_cfg, rescale=rescale, activate_map=True)
        return results

    def predict_mask(self, x: Tuple[Tensor], batch_img_metas: List[dict],
                     results_list, rescale: bool = False):
        mask_rois = bbox2roi([res.bboxes for res in results_list])
        if mask_rois.shape[0] == 0:
            return empty_instances(batch_img_metas, mask_rois.device, task_type='mask',
                                   instance_results=results_list,
                                   mask_thr_binary=self.test_cfg.mask_thr_binary)
        labels = torch.cat([res.labels for res in results_list])
        probs = self.mask_probs(x, mask_rois, labels).split([len(r) for r in results_list])
        for res, p, meta in zip(results_list, probs, batch_img_metas):
            if len(res) == 0:  # this image has no detection (others in the batch have):
                # mmdet's mask head cannot paste zero masks ("chunk expects chunks > 0")
                empty_instances([meta], mask_rois.device, task_type='mask',
                                instance_results=[res],
                                mask_thr_binary=self.test_cfg.mask_thr_binary)
                continue
            self.rescore_by_maskness(res, p)
            self.paste_masks(p, res, meta, rescale)
        return results_list
