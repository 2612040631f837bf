"""Checkpoints: a kill during the save loses nothing, ``--resume`` skips a truncated latest
checkpoint, non-finite weights are never saved, a checkpoint of another model is an error."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

from projects.eva.models import EVAViT
from projects.eva.runner import build_runner
from reliability_toy import toy_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TESTS = osp.join(ROOT, 'tests')


def _runner(config, work_dir, resume=None, **options):
    return build_runner(config, str(work_dir), resume=resume, cfg_options=options,
                        no_validate=True, pin_memory=False)


def _train(config, work_dir, resume=None, **options):
    runner = _runner(config, work_dir, resume, **options)
    runner.train()
    return runner


def _last_checkpoint(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


@pytest.mark.slow
def test_kill_during_save_keeps_the_previous_checkpoint_and_resume_continues(tmp_path):
    """max_keep_ckpts=1: the process is SIGKILLed inside the write of iter_3.pth (bytes in
    the temporary file, not yet renamed). mmengine had deleted iter_2.pth first and
    last_checkpoint named it: all progress was lost. Now iter_2.pth and last_checkpoint are
    intact, and --resume removes the stale temporary file and finishes the run."""
    config = toy_config(tmp_path / 'toy.py', max_iters=6, interval=1, max_keep=1)
    work = tmp_path / 'work'
    marker = tmp_path / 'saving'
    env = dict(os.environ, OMP_NUM_THREADS='1', EVA_TEST_HANG_SAVE='iter_3.pth',
               EVA_TEST_HANG_SAVE_MARKER=str(marker),
               PYTHONPATH=os.pathsep.join([TESTS, ROOT, os.environ.get('PYTHONPATH', '')]))
    cmd = [sys.executable, osp.join(ROOT, 'tools/train.py'), config, '--work-dir', str(work)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 300
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail('training ended before the save of iter_3.pth: '
                            + proc.stdout.read().decode()[-3000:])
            if time.time() > deadline:
                pytest.fail('the save of iter_3.pth never started')
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    files = sorted(os.listdir(work))
    assert 'iter_3.pth' not in files
    assert any(f.startswith('iter_3.pth.tmp') for f in files), files  # killed mid-save
    assert 'iter_2.pth' in files, files  # the previous checkpoint is still there ...
    assert _last_checkpoint(work) == str(work / 'iter_2.pth')  # ... and named
    torch.load(work / 'iter_2.pth', weights_only=True)  # complete
    env.pop('EVA_TEST_HANG_SAVE')
    res = subprocess.run(cmd + ['--resume'], env=env, cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert 'removed ' in out and 'iter_3.pth.tmp' in out  # the stale file, named
    assert sorted(f for f in os.listdir(work) if '.pth' in f) == ['iter_6.pth']
    assert _last_checkpoint(work) == str(work / 'iter_6.pth')
    meta = torch.load(work / 'iter_6.pth', weights_only=True)['meta']
    assert meta['iter'] == 6


@pytest.mark.slow
def test_resume_falls_back_past_a_truncated_or_missing_latest_checkpoint(tmp_path, monkeypatch):
    import projects.eva.engine.checkpoint as ckpt
    config = toy_config(tmp_path / 'toy.py', max_iters=8, interval=4)
    work = tmp_path / 'work'
    _train(config, work)
    assert _last_checkpoint(work) == str(work / 'iter_8.pth')
    data = (work / 'iter_8.pth').read_bytes()
    (work / 'iter_8.pth').write_bytes(data[:len(data) // 2])  # a save cut short
    said = []
    monkeypatch.setattr(ckpt, 'print_log', lambda msg, **kw: said.append(msg))
    starts = []
    runner = _runner(config, work, resume='auto')
    from mmengine.hooks import Hook

    class Record(Hook):
        def before_train(self, runner):
            starts.append(runner.iter)
    runner.register_hook(Record(), 'LOWEST')
    runner.train()
    assert starts == [4]  # resumed from iter_4.pth
    assert len(said) == 1 and f'resuming from {work / "iter_4.pth"}' in said[0]
    assert f'{work / "iter_8.pth"} (not a complete PyTorch checkpoint' in said[0], said
    # the run re-made iter_8.pth; now the latest file is named but gone
    os.remove(work / 'iter_8.pth')
    said.clear()
    assert ckpt.find_resumable_checkpoint(str(work)) == str(work / 'iter_4.pth')
    assert f'{work / "iter_8.pth"} (file not found)' in said[0]
    (work / 'iter_4.pth').write_bytes(b'')
    with pytest.raises(FileNotFoundError, match=r'no readable checkpoint .*iter_4.pth '
                                                r'\(empty file \(0 bytes\)\)'):
        ckpt.find_resumable_checkpoint(str(work))
    assert ckpt.find_resumable_checkpoint(str(tmp_path / 'fresh')) is None  # nothing yet


@pytest.mark.slow
def test_non_finite_weights_are_never_saved_and_the_last_good_checkpoint_stays(tmp_path):
    """The weights turn NaN in iteration 4 after its (finite) loss was checked; with the weight
    check of FiniteLossHook off, the checkpoint path itself refuses to save iter_4."""
    from mmengine.hooks import Hook
    config = toy_config(tmp_path / 'toy.py', max_iters=8, interval=2, max_keep=1,
                        extra="custom_hooks = [dict(type='FiniteLossHook', "
                              "check_weights=False)]\n")
    work = tmp_path / 'work'
    runner = _runner(config, work)

    class Poison(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter + 1 == 4:
                with torch.no_grad():
                    runner.model.fc.weight[0, 0] = float('nan')
    runner.register_hook(Poison(), 'NORMAL')
    with pytest.raises(FloatingPointError, match=r'not saving .*iter_4.pth: 1 parameter.*'
                                                 r'fc.weight.*iter_2.pth\) is kept'):
        runner.train()
    assert sorted(f for f in os.listdir(work) if '.pth' in f) == ['iter_2.pth']
    assert _last_checkpoint(work) == str(work / 'iter_2.pth')
    sd = torch.load(work / 'iter_2.pth', weights_only=True)['state_dict']
    assert all(torch.isfinite(v).all() for v in sd.values())


@pytest.mark.slow
def test_finite_loss_hook_stops_at_the_update_that_made_weights_non_finite(tmp_path):
    from mmengine.hooks import Hook
    config = toy_config(tmp_path / 'toy.py', max_iters=8, interval=2, max_keep=1)
    runner = _runner(config, tmp_path / 'work')
    assert [type(h).__name__ for h in runner.hooks].count('FiniteLossHook') == 1  # added

    class Poison(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter + 1 == 3:
                with torch.no_grad():
                    runner.model.fc.bias[1] = float('inf')
    runner.register_hook(Poison(), 'HIGH')  # before FiniteLossHook (ABOVE_NORMAL) looks
    with pytest.raises(FloatingPointError, match=r'non-finite weights after the update of '
                                                 r'iteration 3 \(epoch 1\): 1 tensor.*fc.bias'):
        runner.train()
    assert (tmp_path / 'work' / 'iter_2.pth').exists()
    assert not (tmp_path / 'work' / 'iter_4.pth').exists()


@pytest.mark.slow
def test_a_checkpoint_of_another_model_is_an_error_naming_counts_prefixes_format(tmp_path):
    config = toy_config(tmp_path / 'toy.py', max_iters=5, interval=5)
    vit = EVAViT(dict(embed_dims=48, num_layers=2, num_heads=3, feedforward_channels=96),
                 img_size=28, patch_size=14)
    other = tmp_path / 'classifier.pth'
    torch.save({'state_dict': {**{f'backbone.{k}': v for k, v in vit.state_dict().items()},
                               'head.fc.weight': torch.zeros(10, 48),
                               'head.fc.bias': torch.zeros(10)}}, other)
    runner = _runner(config, tmp_path / 'w', load_from=str(other))
    with pytest.raises(ValueError) as err:
        runner.train()
    msg = str(err.value)
    for needle in (f'{other} does not fit the model _ToyModel',
                   "1 of the 1 structural groups (the backbone of a model without an EVAViT) "
                   "are missing: ['model']", "'backbone':", "'head': 2",
                   "model key prefixes: {'fc': 2}", 'converter format'):
        assert needle in msg, (needle, msg)
    # same names, other shapes: a model without an EVAViT is all backbone, so neither
    # load_from nor resume takes it (the head rule is tested in tests/apis/test_build.py)
    wide = {'state_dict': {'fc.weight': torch.zeros(8, 16), 'fc.bias': torch.zeros(8)}}
    torch.save(wide, tmp_path / 'wide.pth')
    for kind, options in (('load_from', dict(load_from=str(tmp_path / 'wide.pth'))),
                          ('resume', dict(resume=str(tmp_path / 'wide.pth')))):
        with pytest.raises(ValueError, match=r"fc.weight: checkpoint \(8, 16\) vs model "
                                             r"\(8, 8\)"):
            _runner(config, tmp_path / f'w_{kind}', **options).train()


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    from mmengine.runner.checkpoint import save_checkpoint
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint({'state_dict': {'w': torch.ones(3)}}, str(path))
    good = path.read_bytes()

    class Crash(RuntimeError):
        pass

    def crash(fd):  # the process dies after the bytes were written, before they are final
        raise Crash('killed while saving')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(Crash):
        save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, str(path))
    monkeypatch.undo()
    assert path.read_bytes() == good  # the previous checkpoint is untouched
    assert os.listdir(tmp_path) == ['epoch_1.pth']



def test_wrong_architecture_checkpoint_is_reported(tmp_path):
    arch = dict(embed_dims=48, num_layers=2, num_heads=3, feedforward_channels=96)
    wide = EVAViT(dict(arch, embed_dims=96, num_heads=3), img_size=56)
    path = str(tmp_path / 'wide.pth')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in wide.state_dict().items()}}, path)
    model = EVAViT(arch, img_size=56, init_cfg=dict(type='Pretrained', checkpoint=path,
                                                    prefix='backbone.'))
    with pytest.raises(ValueError, match=r'wide\.pth \(init_cfg=Pretrained, prefix '
                       r"'backbone\.'\) does not fit the model EVAViT: .*tensor\(s\) of "
                       r'another shape: \[.blocks\.0\.attn'):
        model.init_weights()
    deep = EVAViT(dict(arch, num_layers=3), img_size=56)
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\).*blocks\.2'):
        EVAViT(arch, img_size=56).load_state_dict(deep.state_dict())


def test_weights_only_loading_refuses_code(tmp_path):
    from projects.eva.loader import load_weights

    class Evil:
        def __reduce__(self):
            return (os.system, ('echo pwned',))

    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'x': Evil()}, path)
    with pytest.raises(RuntimeError, match='refused to load .*evil.pth'):
        load_weights(path)




DEMOS = {'pretrain': 'demo/eva-mim_vit-tiny-p14_1xb32-8e_shapes.py',
         'classification': 'demo/eva-cls_vit-tiny-p14_1xb64-80e_digits.py',
         'detection': 'demo/eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py',
         'segmentation': 'demo/eva-mask2former_vit-tiny-adapter-p16_1xb8-160it_shapes-seg-128.py',
         'video': 'demo/eva-video_vit-tiny-p14_1xb16-8e_moving-shapes.py',
         'clip': 'demo/eva-clip_vit-tiny-p8_1xb64-6e_shapes-captions.py'}


@pytest.fixture(scope='module')
def foreign_checkpoints(tmp_path_factory):
    """The state dicts of the classification and detection demo models, as their runs save."""
    from reliability_tasks import runner_for
    root = tmp_path_factory.mktemp('foreign')
    out = {}
    for task in ('classification', 'detection'):
        runner = runner_for(DEMOS[task], root / task, {'visualizer.name': f'foreign_{task}'},
                            mode='test')
        out[task] = str(root / f'{task}.pth')
        torch.save({'state_dict': runner.model.state_dict(), 'meta': {}}, out[task])
    return out


@pytest.mark.parametrize('task', sorted(DEMOS))
def test_every_task_refuses_the_checkpoint_of_another_task(task, foreign_checkpoints, tmp_path):
    """tools/test.py (and load_from) load through Runner.load_checkpoint: a checkpoint of
    another task's model stops there, naming the counts, prefixes and format."""
    from reliability_tasks import runner_for
    other = 'classification' if task != 'classification' else 'detection'
    path = foreign_checkpoints[other]
    runner = runner_for(DEMOS[task], tmp_path, {'visualizer.name': f'wrong_{task}'},
                        mode='test', checkpoint=path)
    with pytest.raises(ValueError) as err:
        runner.load_checkpoint(path)
    msg = str(err.value)
    assert msg.startswith(f'{path} does not fit the model '), msg
    assert 'checkpoint key prefixes: {' in msg and 'converter format' in msg, msg


def test_all_finite_fast_path_and_its_confirmation():
    """The fused-norm check: NaN / inf anywhere (any dtype group) is caught; finite fp16
    weights whose norm overflows fp16 (65504) are not reported (the per-tensor confirmation),
    which a norm-only check would get wrong."""
    from projects.eva.engine.checkpoint import all_finite
    big = torch.full((1000, 1000), 100., dtype=torch.float16)  # norm 1e5 > fp16 max
    assert not torch._foreach_norm([big])[0].isfinite()
    ok = [torch.randn(8, 8), torch.randn(3).double(), big]
    assert all_finite(ok)
    for bad in (float('nan'), float('inf'), -float('inf')):
        for i in range(len(ok)):
            tensors = [t.clone() for t in ok]
            tensors[i].view(-1)[-1] = bad
            assert not all_finite(tensors), (bad, i)


@pytest.mark.slow
def test_a_crash_while_the_new_best_checkpoint_is_written_keeps_the_previous_best(
        tmp_path, monkeypatch):
    """save_best: mmengine removed the previous best checkpoint before writing the new one,
    so a crash inside that write left no best checkpoint. Now the old best is deleted only
    after the new best and the checkpoint recording it are saved; --resume goes on."""
    from reliability_toy import VALIDATION
    config = toy_config(tmp_path / 'toy.py', max_iters=6, interval=2, extra=VALIDATION + (
        "train_cfg = dict(type='IterBasedTrainLoop', max_iters=6, val_interval=2)\n"
        "default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=2, "
        "by_epoch=False, max_keep_ckpts=1, save_best='score', rule='greater'))\n"))
    work = tmp_path / 'work'

    class Crash(RuntimeError):
        pass

    fsync = os.fsync

    def crash_in_best_write(fd):
        if osp.basename(os.readlink(f'/proc/self/fd/{fd}')).startswith('best_score_iter_4'):
            raise Crash('killed while writing the new best checkpoint')
        return fsync(fd)

    monkeypatch.setattr(os, 'fsync', crash_in_best_write)
    runner = build_runner(config, str(work), pin_memory=False)
    with pytest.raises(Crash):
        runner.train()
    monkeypatch.undo()
    best = sorted(f for f in os.listdir(work) if f.startswith('best_'))
    assert best == ['best_score_iter_2.pth'], best  # the previous best is still there
    torch.load(work / 'best_score_iter_2.pth', weights_only=True)  # complete
    runner = build_runner(config, str(work), resume='auto', pin_memory=False)
    runner.train()
    # the resumed run knew its best (iter_2) and replaced it once a better one was written
    assert sorted(f for f in os.listdir(work) if f.endswith('.pth')) == [
        'best_score_iter_6.pth', 'iter_6.pth']
    meta = torch.load(work / 'iter_6.pth', weights_only=True)['message_hub']['runtime_info']
    assert meta['best_ckpt'] == str(work / 'best_score_iter_6.pth')
