"""LVIS metric with a configurable detections-per-image cap (EVA-01 evaluates LVIS with
300 detections per image at 1280 and 1000 at 1536; mmdet's ``LVISMetric`` keeps lvis-api's
300)."""
import functools

from mmdet.evaluation.metrics import LVISMetric
from mmdet.evaluation.metrics import lvis_metric as _lvis_metric
from mmdet.registry import METRICS


@METRICS.register_module()
class EVALVISMetric(LVISMetric):
    """``LVISMetric`` + ``max_dets_per_image`` (300 as lvis-api; 1000 for the 1536 eval)."""

    def __init__(self, *args, max_dets_per_image: int = 300, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_dets_per_image = max_dets_per_image

    def compute_metrics(self, results: list) -> dict:
        original = _lvis_metric.LVISResults
        _lvis_metric.LVISResults = functools.partial(original, max_dets=self.max_dets_per_image)
        try:
            return super().compute_metrics(results)
        finally:
            _lvis_metric.LVISResults = original
