"""Augmentation randomness that is a function of (seed, epoch, sample) only.

mmengine seeds data workers once (``seed + worker_id``), so the random crops, flips and
masks a sample gets depend on worker scheduling and on when the run (re)started: a resumed
run sees different augmentations than an uninterrupted one. Here the sampler yields
``(epoch, index)`` and the dataset wrapper reseeds ``random``/``numpy``/``torch`` from
``(seed, epoch, index)`` before running the pipeline, so a run resumed from any epoch sees
exactly the same data, with any number of workers or processes.
"""
import random
from typing import Iterator, Tuple, Union

import numpy as np
import torch
from mmengine.dataset import DefaultSampler
from mmengine.registry import DATA_SAMPLERS, DATASETS


@DATA_SAMPLERS.register_module()
class EpochSeededSampler(DefaultSampler):
    """``DefaultSampler`` that yields ``(epoch, index)`` for :class:`EpochSeededDataset`."""

    _skip = 0

    def skip_next(self, num_samples: int):
        """Drop the first ``num_samples`` of the next pass (mid-epoch resume)."""
        self._skip = num_samples

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        epoch, skip = self.epoch, self._skip
        self._skip = 0
        indices = list(super().__iter__())[skip:]
        return iter([(epoch, int(i)) for i in indices])


@DATASETS.register_module()
class EpochSeededDataset:
    """Wraps any dataset; ``dataset[(epoch, i)]`` runs sample ``i`` under a fixed seed."""

    def __init__(self, dataset, seed: int = 0, lazy_init: bool = False):
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.seed = seed
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        return getattr(self.dataset, 'metainfo', {})

    def full_init(self):
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Union[int, Tuple[int, int]]):
        if isinstance(key, tuple):
            epoch, idx = key
            seed = (self.seed * 1_000_003 + epoch * 10_007_009 + idx) % (2**31)
            random.seed(seed)
            np.random.seed(seed)
            # the CPU generator only: pipelines draw on the CPU, and torch.manual_seed also
            # seeds every accelerator's generators, ~70x slower (0.1 ms per sample, measured)
            torch.default_generator.manual_seed(seed)
            return self.dataset[idx]
        return self.dataset[key]
