"""Hooks that keep long runs honest."""
import math

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop at the first non-finite loss or weight, naming the iteration and every loss term.

    With fp16 the dynamic loss scaler already skips steps whose *gradients* overflow; this
    hook looks at the (fp32) loss values themselves, so a real divergence is not hidden. It
    also checks the weights after the step (``check_weights``): an update can turn them NaN
    while the loss that produced it was finite, and the next forward pass then fails far from
    the cause (segmentation: scipy's "matrix contains invalid numeric entries" in the
    Hungarian matcher) or trains on silently. ``tools/train.py`` adds this hook to every run.
    """
    priority = 'ABOVE_NORMAL'

    def __init__(self, check_weights: bool = True):
        self.check_weights = check_weights

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        where = f'iteration {runner.iter + 1} (epoch {runner.epoch + 1})'
        terms = {}
        if outputs:
            terms = {k: float(v.detach().float().mean()) if isinstance(v, torch.Tensor) else v
                     for k, v in outputs.items()}
            bad = {k: v for k, v in terms.items()
                   if isinstance(v, float) and not math.isfinite(v)}
            if bad:
                raise FloatingPointError(f'non-finite loss at {where}: {bad}; all terms: {terms}')
        if self.check_weights:
            from .checkpoint import non_finite_tensors, unwrap
            count, names = non_finite_tensors(unwrap(runner.model))
            if count:
                raise FloatingPointError(
                    f'non-finite weights after the update of {where}: {count} tensor(s), '
                    f'first {names}; the loss terms were {terms}')


@HOOKS.register_module()
class TorchRNGStateHook(Hook):
    """Save torch's random state in checkpoints and put it back when ``--resume`` continues.

    Drop path, the RPN / RoI samplers and mixup draw from torch's global generator, which
    mmengine re-seeds at start but does not save, so a resumed run drew other numbers than the
    uninterrupted one (detection demo: losses off by up to 5e-3 after a resume). The state is
    restored just before the first resumed iteration, i.e. after the loop has replayed (or
    skipped by index) the batches already trained, so the data side, which those replays
    reproduce with numpy's generator, is left alone. ``tools/train.py`` adds this hook to
    every run. Distributed runs save rank 0's state, which every rank shares unless
    ``randomness.diff_rank_seed`` is set (then the ranks resume on rank 0's stream).
    """
    priority = 'VERY_LOW'
    KEY = 'torch_rng_state'

    def __init__(self):
        self._pending = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[self.KEY] = dict(
            cpu=torch.get_rng_state(),
            cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if getattr(runner, '_resume', False):  # not for load_from (a new run)
            self._pending = checkpoint.get(self.KEY)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        torch.set_rng_state(state['cpu'])
        if state['cuda'] and len(state['cuda']) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state['cuda'])
