"""K722 -> K400/600/700 class mappings (``k722_to_k{400,600,700}_mapping.npy``).

EVA-01 fine-tunes on K400/600/700 from the K722 intermediate model and initialises the
classifier by selecting the K722 rows of the target classes. A mapping is an integer array
(target class ``i`` <- K722 row ``mapping[i]``, what ``tools/misc/build_k722.py`` and EVA's
notebook write) or a boolean mask over the K722 rows (the order kept).
"""
import os.path as osp
from typing import Sequence, Union

import numpy as np
import torch


def load_class_mapping(mapping: Union[str, Sequence[int], np.ndarray]) -> torch.Tensor:
    """A mapping file (``.npy`` or text, one index per line) or sequence -> index tensor."""
    if isinstance(mapping, str):
        if not osp.isfile(mapping):
            raise FileNotFoundError(f'class mapping not found: {mapping} (build it with '
                                    'tools/misc/build_k722.py)')
        if mapping.endswith('.npy'):
            arr = np.load(mapping, allow_pickle=False)
        else:
            with open(mapping) as f:
                arr = np.array([int(line) for line in f if line.strip()], dtype=np.int64)
    else:
        arr = np.asarray(mapping)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f'a class mapping is a non-empty 1-D array, got shape {arr.shape}')
    if arr.dtype == np.bool_:
        return torch.from_numpy(np.flatnonzero(arr)).long()
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f'class mapping must hold integer indices or booleans, got {arr.dtype}')
    return torch.from_numpy(arr.astype(np.int64))


def select_classes(weight: torch.Tensor, mapping: torch.Tensor, num_classes: int,
                   name: str = 'classifier') -> torch.Tensor:
    """Rows of ``weight`` (source classes first) for the ``num_classes`` target classes."""
    if mapping.numel() != num_classes:
        raise ValueError(f'{name}: the class mapping selects {mapping.numel()} classes but the '
                         f'model has {num_classes}')
    if int(mapping.min()) < 0 or int(mapping.max()) >= weight.shape[0]:
        raise IndexError(f'{name}: class mapping indices must lie in [0, {weight.shape[0]}), '
                         f'got [{int(mapping.min())}, {int(mapping.max())}]')
    return weight[mapping]
