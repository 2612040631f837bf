"""EVA-01 block-wise masking."""
import numpy as np
from mmpretrain.datasets.transforms import BEiTMaskGenerator
from mmpretrain.registry import TRANSFORMS


@TRANSFORMS.register_module()
class EVAMaskGenerator(BEiTMaskGenerator):
    """BEiT block masking with EVA-01's stopping rule.

    mmpretrain's ``BEiTMaskGenerator`` retries until exactly ``num_masking_patches`` are
    masked; EVA-01 (like BEiT) stops as soon as a round of 10 attempts adds no patch, so the
    count is at most ``num_masking_patches`` (105 of 256 at 224/14) and varies per image.
    Block sampling itself (``_mask``) is mmpretrain's.
    """

    def __init__(self, input_size=16, num_masking_patches=105, min_num_patches=16,
                 max_num_patches=None, min_aspect=0.3, max_aspect=None):
        super().__init__(input_size, num_masking_patches, min_num_patches, max_num_patches,
                         min_aspect, max_aspect)

    def transform(self, results: dict) -> dict:
        mask = np.zeros((self.height, self.width), dtype=int)
        count = 0
        while count < self.num_masking_patches:
            budget = min(self.num_masking_patches - count, self.max_num_patches)
            delta = self._mask(mask, budget)
            if delta == 0:
                break
            count += delta
        results['mask'] = mask
        return results
