"""LVIS metric with a configurable detections-per-image cap (EVA-01 evaluates LVIS with
300 detections per image at 1280 and 1000 at 1536; mmdet's ``LVISMetric`` always builds
lvis-api's ``LVISResults`` with its default cap of 300, with no option to change it)."""
import os.path as osp
import tempfile

from mmdet.evaluation.metrics import LVISMetric
from mmdet.registry import METRICS
from mmengine.logging import MMLogger

LVIS_MAX_DETS = 300  # lvis-api's default cap (LVISResults(max_dets=300))


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
