"""Sigmoid cross-entropy with the federated loss (LVIS), as EVA-01's detectron2 fork.

Plugged into mmdet's bbox heads as ``loss_cls``: mmdet asks the loss for the number of class
channels and for the activation, so a standard ``Shared4Conv1FCBBoxHead`` becomes the
sigmoid/federated head of EVA-01's LVIS config without a second head class. The logits keep
K + 1 channels (the background column is ignored), as detectron2 stores them.
"""
import json
import os
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS


def load_class_image_counts(source: Union[str, Sequence[float]]) -> torch.Tensor:
    """Per-class image counts from a list, an LVIS annotation json (``categories`` with
    ``image_count``) or a cat-info json (a list of ``{id, image_count}``), sorted by id."""
    if not isinstance(source, str):
        return torch.as_tensor(list(source), dtype=torch.float)
    if not os.path.isfile(source):
        raise FileNotFoundError(
            f'class_freq file {source} not found: build it from the LVIS train annotations '
            'with `python -m projects.eva.detection.lvis cat-info LVIS_TRAIN_JSON OUT_JSON`, '
            'or point class_freq at lvis_v1_train.json itself')
    with open(source) as f:
        data = json.load(f)
    cats = data['categories'] if isinstance(data, dict) else data
    try:
        cats = sorted(cats, key=lambda c: c['id'])
        return torch.tensor([float(c['image_count']) for c in cats])
    except (KeyError, TypeError) as e:
        raise ValueError(f'{source}: expected LVIS categories with "id" and "image_count"') from e


def sample_fed_loss_classes(gt_classes: torch.Tensor, num_fed_classes: int,
                            num_classes: int, weight: torch.Tensor,
                            generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """The classes a federated loss is computed on: every class present in ``gt_classes``
    (the background id ``num_classes`` counts too, as in detectron2) plus negatives drawn
    without replacement with probability ``weight`` (freq ** 0.5) until there are
    ``num_fed_classes``."""
    unique = torch.unique(gt_classes)
    if len(unique) >= num_fed_classes:
        return unique
    prob = weight.float().clone().to(gt_classes.device)
    prob = torch.cat([prob, prob.new_zeros(1)])  # never sample the background
    prob[unique] = 0
    negatives = torch.multinomial(prob, num_fed_classes - len(unique), replacement=False,
                                  generator=generator)
    return torch.cat([unique, negatives])


@MODELS.register_module()
class FederatedSigmoidCELoss(nn.Module):
    """Per-class sigmoid CE over K + 1 logits, optionally restricted to federated classes.

    Args:
        num_classes: K foreground classes.
        use_fed_loss: restrict the loss to the sampled federated classes (LVIS).
        class_freq: per-class image counts or a json holding them (see
            :func:`load_class_image_counts`); required with ``use_fed_loss``.
        freq_weight_power: sampling weight = image_count ** power (0.5).
        num_fed_classes: classes kept per batch (50).
        loss_weight: scale of the loss.
    """
    custom_cls_channels = True
    custom_activation = True
    custom_accuracy = True

    def __init__(self, num_classes: int, use_fed_loss: bool = True,
                 class_freq: Union[str, Sequence[float], None] = None,
                 freq_weight_power: float = 0.5, num_fed_classes: int = 50,
                 loss_weight: float = 1.0):
        super().__init__()
        self.num_classes = num_classes
        self.use_fed_loss = use_fed_loss
        self.num_fed_classes = num_fed_classes
        self.loss_weight = loss_weight
        if use_fed_loss:
            if class_freq is None:
                raise ValueError('use_fed_loss needs class_freq (image counts per class, or '
                                 'the LVIS train annotation / cat-info json)')
            freq = load_class_image_counts(class_freq)
            if len(freq) != num_classes:
                raise ValueError(f'class_freq has {len(freq)} classes, expected {num_classes}')
            self.register_buffer('fed_weight', freq ** freq_weight_power, persistent=False)

    def get_cls_channels(self, num_classes: int) -> int:
        return num_classes + 1

    def get_activation(self, cls_score: torch.Tensor) -> torch.Tensor:
        return cls_score.sigmoid()

    @staticmethod
    def inverse_activation(probs: torch.Tensor) -> torch.Tensor:
        return torch.logit(probs.clamp(1e-12, 1 - 1e-7))

    def get_accuracy(self, cls_score: torch.Tensor, labels: torch.Tensor) -> dict:
        """Foreground accuracy: argmax over the K class logits on positive RoIs."""
        pos = labels < self.num_classes
        if not pos.any():
            return dict(acc=cls_score.new_tensor(0.))
        pred = cls_score[pos, :-1].argmax(dim=1)
        return dict(acc=(pred == labels[pos]).float().mean() * 100)

    def forward(self, cls_score: torch.Tensor, labels: torch.Tensor,
                label_weights: Optional[torch.Tensor] = None, avg_factor=None,
                reduction_override=None, **kwargs) -> torch.Tensor:
        """Sum of the per-class BCE terms divided by the number of RoIs (detectron2)."""
        n, k = cls_score.shape[0], cls_score.shape[1] - 1
        if k != self.num_classes:
            raise ValueError(f'expected {self.num_classes + 1} logits (K + background), got '
                             f'{cls_score.shape[1]}')
        if n == 0:
            return cls_score.sum() * 0
        target = F.one_hot(labels, k + 1)[:, :k].to(cls_score.dtype)
        loss = F.binary_cross_entropy_with_logits(cls_score[:, :k], target, reduction='none')
        if self.use_fed_loss:
            classes = sample_fed_loss_classes(labels, self.num_fed_classes, k,
                                              self.fed_weight)
            mask = cls_score.new_zeros(k + 1)
            mask[classes] = 1
            loss = loss * mask[:k][None]
        if label_weights is not None:
            loss = loss * label_weights.to(loss.dtype)[:, None]
        return self.loss_weight * loss.sum() / n
