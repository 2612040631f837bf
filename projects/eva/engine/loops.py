"""An epoch loop that resumes in the middle of an epoch without replaying or skipping data."""
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` + exact mid-epoch resume.

    mmengine restarts an interrupted epoch from its first batch, so a run resumed from an
    iteration checkpoint trains some batches twice and its losses diverge from an
    uninterrupted run. Here the batches of the current epoch that the checkpoint already
    covers are skipped: by index in :class:`EpochSeededSampler` (no data is loaded), or by
    drawing them from any other sampler.
    """

    def __init__(self, runner, dataloader, max_epochs: int, val_begin: int = 1,
                 val_interval: int = 1, dynamic_intervals=None):
        super().__init__(runner, dataloader, max_epochs, val_begin, val_interval,
                         dynamic_intervals)
        if len(self.dataloader) == 0:  # mmengine: 'epoch_length ... got 0' in the scheduler
            loader = self.dataloader
            raise ValueError(
                f'train_dataloader yields no batch: batch_size {loader.batch_size} with '
                f'drop_last={getattr(loader.batch_sampler, "drop_last", None)} and '
                f'{len(loader.dataset)} training sample(s) ({len(loader.sampler)} in this '
                'process). Use a smaller '
                'train_dataloader.batch_size or drop_last=False.')

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        done = self._iter - self._epoch * len(self.dataloader)
        sampler = getattr(self.dataloader, 'sampler', None)
        skip = done if 0 < done < len(self.dataloader) else 0
        by_index = skip and hasattr(sampler, 'skip_next')
        if by_index:
            sampler.skip_next(skip * self.dataloader.batch_size)
        batches = iter(self.dataloader)
        if skip and not by_index:
            for _ in range(skip):
                next(batches)
        if skip:
            self.runner.logger.info(f'resuming inside epoch {self._epoch + 1}: skipped its '
                                    f'first {skip} batches, already trained')
            if not by_index:
                self.runner.logger.warning(
                    'the batches of this epoch are the uninterrupted run\'s, but random '
                    'augmentations drawn from numpy / random may differ from it: wrap the '
                    'training dataset in EpochSeededDataset (sampler EpochSeededSampler) for an '
                    'exact mid-epoch resume')
        for idx, data_batch in enumerate(batches, start=skip):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
