"""Hooks that keep long runs honest."""
import math

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop at the first non-finite loss, naming the iteration and every loss term.

    With fp16 the dynamic loss scaler already skips steps whose *gradients* overflow; this
    hook looks at the (fp32) loss values themselves, so a real divergence is not hidden.
    """
    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if not outputs:
            return
        terms = {k: float(v.detach().float().mean()) if isinstance(v, torch.Tensor) else v
                 for k, v in outputs.items()}
        bad = {k: v for k, v in terms.items()
               if isinstance(v, float) and not math.isfinite(v)}
        if bad:
            raise FloatingPointError(
                f'non-finite loss at iteration {runner.iter + 1} (epoch {runner.epoch + 1}): '
                f'{bad}; all terms: {terms}')
