"""Flip + multi-scale test-time augmentation that merges boxes **and masks**.

mmdet's ``DetTTAModel`` merges boxes only (it asserts on masks). This follows detectron2's
``GeneralizedRCNNWithTTA``: detect boxes on every view, map them back to the original image
(undo the flip and the resize), merge them with NMS, then run the mask heads on the merged
boxes in every view and average the per-RoI mask probabilities (flipped back) before pasting.
Maskness rescoring, when the RoI head has it, uses the averaged masks.
"""
from typing import List

import torch
from mmcv.ops import batched_nms
from mmdet.models.test_time_augs import DetTTAModel
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi, bbox_flip
from mmengine.structures import InstanceData


@MODELS.register_module()
class EVADetTTAModel(DetTTAModel):
    """TTA for (Cascade) Mask R-CNN. ``tta_cfg``: ``nms`` (e.g. ``dict(type='nms',
    iou_threshold=0.5)``) and ``max_per_img``."""

    def test_step(self, data):
        if isinstance(data, dict):
            num_views = len(data[next(iter(data))])
            views = [{k: v[i] for k, v in data.items()} for i in range(num_views)]
        else:
            raise TypeError(f'expected the TTA batch as a dict, got {type(data).__name__}')
        det = self.module
        roi_head = det.roi_head
        feats, metas, dets = [], [], []
        for n, view in enumerate(views):
            view = views[n] = det.data_preprocessor(view, False)
            x = det.extract_feat(view['inputs'])
            samples = view['data_samples']
            batch_metas = [s.metainfo for s in samples]
            proposals = det.rpn_head.predict(x, samples, rescale=False)
            boxes = roi_head.predict_bbox(x, batch_metas, proposals,
                                          rcnn_test_cfg=roi_head.test_cfg, rescale=True)
            feats.append(x)
            metas.append(batch_metas)
            dets.append(boxes)
        outputs = []
        for i in range(len(metas[0])):
            merged = self._merge_boxes([d[i] for d in dets], [m[i] for m in metas])
            if roi_head.with_mask:
                merged = self._merge_masks(roi_head, merged, feats, metas, i)
            out = views[0]['data_samples'][i]
            out.pred_instances = merged
            outputs.append(out)
        return outputs

    @staticmethod
    def _to_original(bboxes: torch.Tensor, meta: dict) -> torch.Tensor:
        if meta.get('flip', False):
            bboxes = bbox_flip(bboxes, meta['ori_shape'], meta['flip_direction'])
        return bboxes

    @staticmethod
    def _to_view(bboxes: torch.Tensor, meta: dict) -> torch.Tensor:
        if meta.get('flip', False):
            bboxes = bbox_flip(bboxes, meta['ori_shape'], meta['flip_direction'])
        return bboxes * bboxes.new_tensor(meta['scale_factor']).repeat(2)

    def _merge_boxes(self, results: List[InstanceData], metas: List[dict]) -> InstanceData:
        bboxes = torch.cat([self._to_original(r.bboxes, m) for r, m in zip(results, metas)])
        scores = torch.cat([r.scores for r in results])
        labels = torch.cat([r.labels for r in results])
        merged = InstanceData(bboxes=bboxes, scores=scores, labels=labels)
        if len(bboxes) == 0:
            return merged
        dets, keep = batched_nms(bboxes, scores, labels, self.tta_cfg['nms'])
        keep = keep[:self.tta_cfg['max_per_img']]
        merged = merged[keep]
        merged.scores = dets[:len(keep), -1]
        return merged

    def _merge_masks(self, roi_head, merged: InstanceData, feats, metas, i: int):
        if len(merged) == 0:
            merged.masks = torch.zeros(0, *metas[0][i]['ori_shape'][:2], dtype=torch.bool,
                                       device=merged.bboxes.device)
            return merged
        total = 0
        for x, batch_metas in zip(feats, metas):
            meta = batch_metas[i]
            rois = bbox2roi([self._to_view(merged.bboxes, meta)])
            rois[:, 0] = i
            probs = roi_head.mask_probs(x, rois, merged.labels)
            if meta.get('flip', False):
                direction = meta['flip_direction']
                dims = {'horizontal': [-1], 'vertical': [-2], 'diagonal': [-2, -1]}[direction]
                probs = probs.flip(dims)
            total = total + probs
        probs = total / len(feats)
        roi_head.rescore_by_maskness(merged, probs)
        meta = dict(ori_shape=metas[0][i]['ori_shape'], scale_factor=(1.0, 1.0))
        return roi_head.paste_masks(probs, merged, meta, rescale=True)
