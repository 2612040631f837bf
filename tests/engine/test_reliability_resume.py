"""Resuming an epoch-based run from an iteration checkpoint continues at the next batch
(mmengine replayed the interrupted epoch); a training set smaller than one batch is named."""
import pytest
from mmengine.hooks import Hook

from projects.eva.runner import build_runner
from reliability_toy import toy_config

EPOCHS = (  # 16 samples, batch 4: 4 iterations per epoch, 3 epochs, iteration checkpoints
    "train_dataloader = dict(batch_size=4, num_workers=0, collate_fn=dict("
    "type='pseudo_collate'), sampler=dict(type='DefaultSampler', shuffle=True),"
    " dataset=dict(type='_ToyData'))\n"
    "train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=3)\n")


class Record(Hook):
    def __init__(self, stop_after=None):
        self.losses, self.stop_after = {}, stop_after

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses[runner.iter + 1] = float(outputs['loss'])
        if runner.iter + 1 == self.stop_after:
            raise KeyboardInterrupt('killed')


def _run(config, work, record, resume=None):
    runner = build_runner(config, str(work), resume=resume, no_validate=True, pin_memory=False)
    runner.register_hook(record, 'LOWEST')  # after the checkpoint hook saved
    runner.train()
    return runner


@pytest.mark.slow
def test_epoch_run_resumed_from_an_iteration_checkpoint_repeats_the_uninterrupted_losses(
        tmp_path):
    config = toy_config(tmp_path / 'toy.py', max_iters=12, interval=1, extra=EPOCHS)
    whole = Record()
    _run(config, tmp_path / 'whole', whole)
    assert sorted(whole.losses) == list(range(1, 13))
    cut = Record(stop_after=6)  # killed after iter_6.pth: in the middle of epoch 2
    with pytest.raises(KeyboardInterrupt):
        _run(config, tmp_path / 'cut', cut)
    resumed = Record()
    runner = _run(config, tmp_path / 'cut', resumed, resume='auto')
    # mmengine replayed epoch 2 from its first batch: iterations 7..14, other losses
    assert sorted(resumed.losses) == list(range(7, 13)), sorted(resumed.losses)
    assert runner.iter == 12
    assert resumed.losses == {i: whole.losses[i] for i in range(7, 13)}


def test_training_set_smaller_than_one_batch_is_named(tmp_path):
    """drop_last with a batch larger than the dataset: mmengine said 'epoch_length ... got 0'
    from a parameter scheduler."""
    config = toy_config(tmp_path / 'toy.py', max_iters=12, interval=1, extra=EPOCHS)
    runner = build_runner(config, str(tmp_path / 'w'), no_validate=True, pin_memory=False,
                          cfg_options={'train_dataloader.batch_size': 32,
                                       'train_dataloader.drop_last': True})
    with pytest.raises(ValueError, match=r'train_dataloader yields no batch: batch_size 32 with '
                                         r'drop_last=True and 16 training sample\(s\)'):
        runner.train()
