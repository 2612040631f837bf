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


def test_deepspeed_checkpoint_folders_are_checked_like_files(tmp_path, monkeypatch):
    """A DeepSpeed run killed during its first save left epoch_2.pth/ with a zero-byte file;
    --resume took it and failed with 'EOFError: Ran out of input'. Folders are checked file
    by file now: the incomplete one is skipped with the reason, as files are."""
    import os
    import time

    import torch

    import projects.eva.engine.checkpoint as ckpt
    work = tmp_path / 'work'
    good, bad = work / 'epoch_1.pth', work / 'epoch_2.pth'  # mmengine: tag = the file name
    for folder in (good, bad):
        folder.mkdir(parents=True)
        torch.save({'module': {'w': torch.ones(2)}}, folder / 'mp_rank_00_model_states.pt')
        for rank in (0, 1):
            torch.save({'optimizer_state_dict': {}},
                       folder / f'zero_pp_rank_{rank}_mp_rank_00_optim_states.pt')
        time.sleep(0.01)
    (work / 'last_checkpoint').write_text(str(bad))
    said = []
    monkeypatch.setattr(ckpt, 'print_log', lambda msg, **kw: said.append(msg))
    assert ckpt.find_resumable_checkpoint(str(work)) == str(bad)  # complete: taken
    (bad / 'zero_pp_rank_1_mp_rank_00_optim_states.pt').write_bytes(b'')  # killed mid-save
    assert ckpt.find_resumable_checkpoint(str(work)) == str(good)
    assert said[-1] == (f'--resume: resuming from {good}; skipped {bad} '
                        '(zero_pp_rank_1_mp_rank_00_optim_states.pt: empty file (0 bytes))')
    torch.save({'optimizer_state_dict': {}}, bad / 'zero_pp_rank_1_mp_rank_00_optim_states.pt')
    os.remove(bad / 'zero_pp_rank_0_mp_rank_00_optim_states.pt')  # rank 0 killed before it
    assert ckpt.checkpoint_problem(str(bad)) == 'ZeRO optimizer shards of rank(s) [0] missing'
    data = (bad / 'mp_rank_00_model_states.pt').read_bytes()
    (bad / 'mp_rank_00_model_states.pt').write_bytes(data[:len(data) // 2])
    assert ckpt.checkpoint_problem(str(bad)).startswith(
        'mp_rank_00_model_states.pt: not a complete PyTorch checkpoint')
    for name in os.listdir(bad):
        os.remove(bad / name)
    assert ckpt.checkpoint_problem(str(bad)) == 'empty folder'


@pytest.mark.parametrize('config', [
    'configs/demo/eva-clip_vit-tiny-p8_1xb64-6e_shapes-captions.py',
    'configs/demo/eva-video_vit-tiny-p14_1xb16-8e_moving-shapes.py'])
def test_epoch_based_configs_get_the_resumable_loop(config):
    """The configs of the issue (mmengine's EpochBasedTrainLoop) train with the loop that
    continues an interrupted epoch; their arguments are kept."""
    from projects.eva.engine.safety import add_safety
    from projects.eva.runner import runner_config
    cfg = runner_config(config)
    before = dict(cfg.train_cfg)
    assert before['type'] == 'EpochBasedTrainLoop'
    add_safety(cfg, 'train')
    assert dict(cfg.train_cfg) == dict(before, type='ResumableEpochBasedTrainLoop')
    add_safety(runner_config(config), 'test')  # testing builds no train loop: untouched
