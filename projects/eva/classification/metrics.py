"""Top-1 on the ImageNet robustness sets, from 1000-way IN-1K predictions."""
from typing import List, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS


@METRICS.register_module()
class RobustAccuracy(BaseMetric):
    """Top-1 accuracy (%) with the per-set rules:

    * ``class_subset`` in the dataset meta (IN-A / IN-R): the argmax is taken over those 200
      classes only.
    * ``real_labels`` on samples (IN-ReaL): correct if the prediction is any of the labels;
      images without labels are skipped.
    * ``objectnet_groups`` (ObjectNet): the score of an ObjectNet class is the max over its
      IN-1K classes; argmax over the 113 classes.
    """
    default_prefix = 'robust'

    def __init__(self, name: str = 'top1', **kwargs):
        super().__init__(**kwargs)
        self.name = name

    def process(self, data_batch, data_samples: Sequence[dict]):
        meta = self.dataset_meta or {}
        subset = meta.get('class_subset')
        groups = meta.get('objectnet_groups')
        for ds in data_samples:
            score = ds['pred_score'].float().cpu()
            if subset is not None:
                pred = subset[int(score[subset].argmax())]
            elif groups is not None:
                pred = int(torch.stack([score[g].max() for g in groups]).argmax())
            else:
                pred = int(score.argmax())
            if 'real_labels' in ds:
                if len(ds['real_labels']):
                    self.results.append(float(pred in ds['real_labels']))
                continue
            self.results.append(float(pred == int(ds['gt_label'])))

    def compute_metrics(self, results: List[float]) -> dict:
        if not results:
            raise RuntimeError('RobustAccuracy: no scored samples')
        return {self.name: 100.0 * sum(results) / len(results)}
