"""One training run per work dir: a second run is refused while the first lives, naming it;
a run that was killed leaves no stuck lock."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest

from projects.eva.runner import build_runner
from reliability_toy import toy_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TESTS = osp.join(ROOT, 'tests')


def _start_hanging_run(config, work, marker, hang_at):
    """tools/train.py in a subprocess, hanging inside the save of ``hang_at``."""
    env = dict(os.environ, OMP_NUM_THREADS='1', EVA_TEST_HANG_SAVE=hang_at,
               EVA_TEST_HANG_SAVE_MARKER=str(marker),
               PYTHONPATH=os.pathsep.join([TESTS, ROOT, os.environ.get('PYTHONPATH', '')]))
    cmd = [sys.executable, osp.join(ROOT, 'tools/train.py'), config, '--work-dir', str(work)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail('the first run ended early: ' + proc.stdout.read().decode()[-3000:])
        if time.time() > deadline:
            proc.kill()
            pytest.fail(f'the first run never reached the save of {hang_at}')
        time.sleep(0.05)
    return proc


def _checkpoint_files(work):
    return {n: (work / n).read_bytes() for n in os.listdir(work)
            if n.endswith('.pth') or n == 'last_checkpoint'}


@pytest.mark.slow
def test_second_run_in_a_live_work_dir_is_refused_and_a_killed_run_leaves_no_lock(tmp_path):
    """Two runs in one work dir used to both train (exit 0), overwriting each other's
    checkpoints and last_checkpoint. A second run is refused before it loads or writes
    anything, naming the first's PID and start time; once the first is killed (no clean
    exit, no unlock) the work dir is free again and --resume continues it."""
    config = toy_config(tmp_path / 'toy.py', max_iters=6, interval=1)
    work = tmp_path / 'work'
    first = _start_hanging_run(config, work, tmp_path / 'saving', 'iter_2.pth')
    try:
        before = _checkpoint_files(work)
        second = build_runner(config, str(work), cfg_options={'randomness.seed': 1},
                              pin_memory=False)
        with pytest.raises(RuntimeError) as err:
            second.train()
        msg = str(err.value)
        assert f'work dir {work} is in use by another training run (PID {first.pid} ' in msg
        assert 'started 20' in msg and 'UTC' in msg and 'tools/train.py' in msg, msg
        assert _checkpoint_files(work) == before  # no checkpoint written or replaced
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    runner = build_runner(config, str(work), resume='auto', pin_memory=False)
    runner.train()  # the killed run's lock went with its process
    assert runner.iter == 6
    with open(work / 'train.lock') as f:
        assert f.read().startswith(f'PID {os.getpid()} ')


def test_lock_is_per_process_and_released(tmp_path):
    """The same process may train again in its work dir (a notebook, a resume after an
    exception); another process may not; after release, it may."""
    from projects.eva.engine import lock
    work = str(tmp_path / 'w')
    assert lock.acquire_work_dir(work) is None
    assert lock.acquire_work_dir(work) is None  # re-entrant in this process

    def other_process():
        """``acquire_work_dir`` in a forked child with the empty lock table of a new process
        (a fresh Python would spend seconds importing mmengine for lock.py)."""
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: answer through the pipe, never return into pytest
            try:
                os.close(read)
                lock._HELD.clear()
                os.write(write, repr(lock.acquire_work_dir(work)).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read) as f:
            answer = f.read()
        os.waitpid(pid, 0)
        return answer
    held = other_process()
    assert held.startswith(f"'PID {os.getpid()} on "), held
    lock.release_work_dir(work)
    assert other_process() == 'None'


RANK_SCRIPT = '''
import os, sys
sys.path.insert(0, {root!r})
from types import SimpleNamespace
import torch.distributed as dist
from projects.eva.engine.lock import WorkDirLockHook
dist.init_process_group('gloo')
try:
    WorkDirLockHook().before_run(SimpleNamespace(work_dir={work!r}))
    print('rank', dist.get_rank(), 'pid', os.getpid(), 'ok', flush=True)
except RuntimeError as e:
    print('rank', dist.get_rank(), 'refused:', e, flush=True)
dist.barrier()
dist.destroy_process_group()
'''


def _two_ranks(tmp_path, work):
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = str(s.getsockname()[1])
    script = tmp_path / 'rank.py'
    script.write_text(RANK_SCRIPT.format(root=ROOT, work=str(work)))
    procs = [subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=dict(os.environ, OMP_NUM_THREADS='1', RANK=str(r), WORLD_SIZE='2',
                            MASTER_ADDR='127.0.0.1', MASTER_PORT=port)) for r in (0, 1)]
    return [p.communicate(timeout=300)[0] for p in procs]


@pytest.mark.slow  # two gloo ranks, launched twice (~50 s on 2 cores)
def test_distributed_run_locks_on_rank_0_and_every_rank_stops(tmp_path):
    """Rank 0 takes the lock and tells every rank: with the work dir in use all ranks stop
    with the same message (none is left waiting in a collective); when it is free, rank 0
    holds it."""
    from projects.eva.engine.lock import acquire_work_dir, release_work_dir
    work = tmp_path / 'w'
    assert acquire_work_dir(str(work)) is None  # another run (this process) trains there
    try:
        out = _two_ranks(tmp_path, work)
    finally:
        release_work_dir(str(work))
    for rank, text in enumerate(out):
        assert f'rank {rank} refused: work dir {work} is in use by another training run ' \
               f'(PID {os.getpid()} ' in text, text
    out = _two_ranks(tmp_path, work)
    assert all(' ok' in text for text in out), out
    import re
    rank0_pid = re.search(r'^rank 0 pid (\d+) ok$', out[0], re.M).group(1)
    with open(work / 'train.lock') as f:
        assert f.read().startswith(f'PID {rank0_pid} ')  # rank 0 held it, not rank 1
