"""COCO / LVIS metrics for EVA's detectors.

- ``EVALVISMetric``: a configurable detections-per-image cap (EVA-01 evaluates LVIS with 300
  detections per image at 1280 and 1000 at 1536; mmdet's ``LVISMetric`` always builds
  lvis-api's ``LVISResults`` with its default cap of 300, with no option to change it).
- No detection on any image: mmdet's ``CocoMetric`` / ``LVISMetric`` logged "The testing
  results of the whole dataset is empty" and returned no metric at all, so tools/test.py
  exited 0 with nothing. Here every metric is 0 (the AP of a detector that finds nothing),
  with a warning; ``EVACocoMetric`` is mmdet's ``CocoMetric`` with that rule, and
  ``add_safety`` puts it in place of a config's ``CocoMetric``.
"""
import os.path as osp
import tempfile

from mmdet.evaluation.metrics import CocoMetric, LVISMetric
from mmdet.registry import METRICS
from mmengine.logging import MMLogger

LVIS_MAX_DETS = 300  # lvis-api's default cap (LVISResults(max_dets=300))
# the keys mmdet's metrics report per metric when metric_items is not set
DEFAULT_ITEMS = {
    'coco': {'bbox': ['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l'],
             'proposal': ['AR@100', 'AR@300', 'AR@1000', 'AR_s@1000', 'AR_m@1000', 'AR_l@1000']},
    'lvis': {'bbox': ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf'],
             'proposal': ['AR@300', 'ARs@300', 'ARm@300', 'ARl@300']},
}


def zeros_without_detections(metric, results: list, kind: str):
    """Every metric 0 when no image has a detection (None otherwise: evaluate as usual)."""
    if not results or metric.format_only or any(
            len(pred.get('bboxes', ())) for _, pred in results):
        return None
    out = {}
    for name in metric.metrics:
        if name == 'proposal_fast':
            out.update({f'AR@{n}': 0.0 for n in metric.proposal_nums})
        elif name == 'proposal':
            out.update({k: 0.0 for k in metric.metric_items or DEFAULT_ITEMS[kind]['proposal']})
        else:
            out.update({f'{name}_{k}': 0.0
                        for k in metric.metric_items or DEFAULT_ITEMS[kind]['bbox']})
    MMLogger.get_current_instance().warning(
        f'{type(metric).__name__}: no detection on any of the {len(results)} images (an '
        'untrained or wrong checkpoint, or a score threshold above every score): every '
        f'metric is 0: {sorted(out)}')
    return out


@METRICS.register_module()
class EVACocoMetric(CocoMetric):
    """mmdet's ``CocoMetric``; no detection on any image gives 0 for every metric."""

    def compute_metrics(self, results: list) -> dict:
        zeros = zeros_without_detections(self, results, 'coco')
        return zeros if zeros is not None else super().compute_metrics(results)


@METRICS.register_module()
class EVALVISMetric(LVISMetric):
    """``LVISMetric`` + ``max_dets_per_image``. At lvis-api's 300 it is mmdet's metric
    unchanged; another cap evaluates bbox / segm the way detectron2's ``LVISEvaluator`` does
    (``LVISResults(gt, dets, max_dets=N)`` then ``LVISEval``)."""

    def __init__(self, *args, max_dets_per_image: int = LVIS_MAX_DETS, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_dets_per_image = max_dets_per_image
        if max_dets_per_image != LVIS_MAX_DETS:
            other = [m for m in self.metrics if m not in ('bbox', 'segm')]
            if other or self.format_only or self.classwise:
                raise ValueError(f'EVALVISMetric(max_dets_per_image={max_dets_per_image}) '
                                 f'evaluates bbox / segm only, without classwise or '
                                 f'format_only; got metric={self.metrics}, '
                                 f'classwise={self.classwise}, format_only={self.format_only}')

    def compute_metrics(self, results: list) -> dict:
        zeros = zeros_without_detections(self, results, 'lvis')
        if zeros is not None:
            return zeros
        if self.max_dets_per_image == LVIS_MAX_DETS:
            return super().compute_metrics(results)
        from lvis import LVIS, LVISEval, LVISResults
        logger = MMLogger.get_current_instance()
        gts, preds = zip(*results)
        with tempfile.TemporaryDirectory() as tmp_dir:
            prefix = self.outfile_prefix or osp.join(tmp_dir, 'results')
            if self._lvis_api is None:
                self._lvis_api = LVIS(self.gt_to_coco_json(gt_dicts=gts, outfile_prefix=prefix))
            if self.cat_ids is None:
                self.cat_ids = self._lvis_api.get_cat_ids()
            result_files = self.results2json(preds, prefix)
            items = self.metric_items or ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr',
                                          'APc', 'APf']
            out = {}
            for metric in self.metrics:
                logger.info(f'Evaluating {metric} (at most {self.max_dets_per_image} '
                            'detections per image)...')
                dets = LVISResults(self._lvis_api, result_files[metric],
                                   max_dets=self.max_dets_per_image)
                lvis_eval = LVISEval(self._lvis_api, dets, metric)
                lvis_eval.run()
                lvis_eval.print_results()
                out.update({f'{metric}_{k}': float(f'{float(v):.3f}')
                            for k, v in lvis_eval.get_results().items() if k in items})
        return out
