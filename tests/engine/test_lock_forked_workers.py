"""The work-dir lock is released at the end of a run even when processes forked during the
run (persistent dataloader workers) still hold the lock file open: the video demo stage's
``runner.test()`` after ``runner.train()`` refused its own work dir."""
import multiprocessing
import time

from projects.eva.engine.lock import acquire_work_dir, release_work_dir


def test_release_frees_the_lock_while_forked_workers_live(tmp_path):
    work = str(tmp_path / 'work')
    assert acquire_work_dir(work) is None
    worker = multiprocessing.get_context('fork').Process(target=time.sleep, args=(60,))
    worker.start()  # inherits the open lock file, as a dataloader worker does
    try:
        release_work_dir(work)
        assert acquire_work_dir(work) is None  # the next run in this process (runner.test())
    finally:
        worker.kill()
        worker.join()
        release_work_dir(work)
