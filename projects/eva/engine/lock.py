"""One training run per work dir.

Two ``tools/train.py`` runs started with the same ``--work-dir`` both trained to the end with
exit 0: the second one's ``epoch_2.pth`` replaced the first's, ``last_checkpoint`` named the
other run, and a later ``--resume`` continued the wrong run and deleted the right one's newest
checkpoint. :class:`WorkDirLockHook` (added to every training run by ``add_safety``) takes an
exclusive ``flock`` on ``<work_dir>/train.lock`` before anything is loaded or written. The
kernel releases the lock when its process ends, however it ends (exception, ``kill -9``, node
reboot), so a crashed run never leaves a stuck lock; the holder's PID, host, start time and
command line are written into the file so that the refusal can name them.
"""
import datetime
import fcntl
import os
import os.path as osp
import socket
import sys
from typing import Dict, Optional

from mmengine.dist import broadcast_object_list, get_dist_info
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

LOCK_NAME = 'train.lock'
# work dir (real path) -> open lock file of this process: a process may train again in the
# same work dir (a notebook, a test, a resume after an exception) without refusing itself
_HELD: Dict[str, object] = {}


def _holder(f) -> str:
    f.seek(0)
    text = f.read().strip()
    return text or 'a process that has not yet written its PID'


def acquire_work_dir(work_dir: str) -> Optional[str]:
    """Lock ``work_dir`` for this process. None on success, else why it is in use."""
    os.makedirs(work_dir, exist_ok=True)
    key = osp.realpath(work_dir)
    if key in _HELD:
        return None
    f = open(osp.join(work_dir, LOCK_NAME), 'a+')
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(f)
        f.close()
        return holder
    started = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')
    f.seek(0)
    f.truncate()
    f.write(f'PID {os.getpid()} on {socket.gethostname()}, started {started}: '
            f'{" ".join(sys.argv)}\n')
    f.flush()
    _HELD[key] = f
    return None


def release_work_dir(work_dir: str) -> None:
    f = _HELD.pop(osp.realpath(work_dir), None)
    if f is not None:
        # LOCK_UN, not only close: dataloader workers forked during the run (persistent
        # workers outlive runner.train()) share this open file and would keep the lock, so
        # runner.test() after runner.train() in one process refused its own work dir
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        f.close()


@HOOKS.register_module()
class WorkDirLockHook(Hook):
    """Refuse to train in a work dir another live process is training in.

    Rank 0 takes the lock in ``before_run`` (before ``--resume`` reads anything, before any
    checkpoint is written) and tells every rank the outcome, so all ranks stop together with
    the same message. Released in ``after_run`` or when the process ends.
    """
    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        rank, world_size = get_dist_info()
        holder = [acquire_work_dir(runner.work_dir) if rank == 0 else None]
        if world_size > 1:
            broadcast_object_list(holder, src=0)
        if holder[0] is not None:
            raise RuntimeError(
                f'work dir {runner.work_dir} is in use by another training run ({holder[0]}). '
                'Two runs in one work dir overwrite each other\'s checkpoints and '
                'last_checkpoint: choose another --work-dir, or wait for that run to end '
                f'(the lock, {osp.join(runner.work_dir, LOCK_NAME)}, is released when its '
                'process exits, crashed or not).')

    def after_run(self, runner) -> None:
        if get_dist_info()[0] == 0:
            release_work_dir(runner.work_dir)
