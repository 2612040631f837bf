"""Hooks for comparing runs across process counts."""
import json
from typing import Optional

import torch
from mmengine.dist import all_reduce, get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class GlobalLossRecorderHook(Hook):
    """Writes the loss of the *global* batch of every iteration to a JSON-lines file.

    mmengine logs rank 0's local loss only. Here each rank's loss is weighted by the number
    of elements it averaged over (MIM: masked patches, from ``data_samples[i].mask``; else
    samples) and the weighted mean is all-reduced, so an N-process run at global batch B
    reports exactly the loss a 1-process run at batch B computes on the same samples.
    """

    priority = 'LOW'

    def __init__(self, out_file: str, weight_key: Optional[str] = 'mask'):
        self.out_file = out_file
        self.weight_key = weight_key

    def before_run(self, runner):
        if get_rank() == 0:
            open(self.out_file, 'w').close()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        loss = outputs['loss'].detach().double().reshape(())
        weight = self._weight(data_batch)
        stats = torch.stack([loss * weight, torch.as_tensor(weight, dtype=torch.float64)])
        stats = stats.to(loss.device)
        all_reduce(stats)  # sum over ranks (no-op without distributed)
        if get_rank() == 0:
            with open(self.out_file, 'a') as f:
                f.write(json.dumps(dict(iter=runner.iter, loss=(stats[0] / stats[1]).item(),
                                        weight=stats[1].item())) + '\n')

    def _weight(self, data_batch) -> float:
        samples = (data_batch or {}).get('data_samples') or []
        if self.weight_key and samples and all(s.get(self.weight_key) is not None
                                               for s in samples):
            return float(sum(torch.as_tensor(s.get(self.weight_key)).sum() for s in samples))
        inputs = (data_batch or {}).get('inputs')
        return float(len(samples) or len(inputs) if inputs is not None else 1)
