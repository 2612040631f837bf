"""One test per fix in ``projects/eva/compat.py``; each fails when its fix is left out of
``compat.FIXES`` (checked by hand when the fix was written)."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from projects.eva import compat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_fix_is_applied_from_one_place():
    assert [f.__name__ for f in compat.FIXES] == [
        'deferred_deepspeed_import', 'weights_only_resume', 'safe_checkpoint_loading',
        'atomic_local_writes', 'mmaction_drn', 'lvis_numpy2', 'cpu_dist_init',
        'named_image_errors', 'mmcv_cpu_amp']
    for fix in compat.FIXES:  # each names its upstream bug
        assert f':func:`{fix.__name__}` -- ' in compat.__doc__


def test_weights_only_loads_an_mmengine_checkpoint(tmp_path):
    """mmengine#1655: what mmengine 0.10.7 saves (message hub, config, numpy meta)."""
    from mmengine.config import ConfigDict
    from mmengine.logging import MessageHub
    from mmengine.runner.checkpoint import save_checkpoint
    hub = MessageHub.get_instance('test_compat_weights_only')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', 1.5)
    path = str(tmp_path / 'iter_2.pth')
    save_checkpoint({'meta': dict(seed=np.int64(3), cfg=ConfigDict(a=1), hist=np.zeros(2)),
                     'message_hub': hub.state_dict(), 'state_dict': {'w': torch.ones(1)}}, path)
    ckpt = torch.load(path, weights_only=True)
    assert ckpt['message_hub']['log_scalars']['train/loss'].mean() == 1.0  # statistics rebuilt
    assert ckpt['meta']['seed'] == 3 and ckpt['meta']['cfg'].a == 1


def test_another_runs_checkpoint_resumes_only_with_the_opt_in(tmp_path, monkeypatch):
    """A checkpoint with a function reference (other mmengine runs) is refused by name --
    no fallback to full unpickling -- and resumes when the user opts in."""
    from mmengine.logging import MessageHub
    from mmengine.runner import Runner
    from torch.utils.data import DataLoader

    from projects.eva.loader import load_weights
    model = torch.nn.Linear(2, 1)
    runner = Runner(model=model, work_dir=str(tmp_path / 'run'),
                    train_dataloader=DataLoader([torch.zeros(2)] * 2, batch_size=1),
                    train_cfg=dict(by_epoch=False, max_iters=10),
                    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
                    default_scope=None, experiment_name='test_compat_resume')
    path = str(tmp_path / 'other.pth')
    torch.save({'meta': dict(epoch=0, iter=7, hook=os.path.join), 'state_dict':
                {k: v + 1 for k, v in model.state_dict().items()},
                'message_hub': MessageHub.get_instance('other_run').state_dict()}, path)
    with pytest.raises(RuntimeError, match=r'refused to load .*other\.pth: it pickles '
                       r'\[.*join.*EVA_TRUST_CHECKPOINTS=1'):
        load_weights(path)
    with pytest.raises(RuntimeError, match='EVA_TRUST_CHECKPOINTS'):
        runner.resume(path, resume_optimizer=False, resume_param_scheduler=False)
    assert runner.iter == 0
    monkeypatch.setenv('EVA_TRUST_CHECKPOINTS', '1')
    runner.resume(path, resume_optimizer=False, resume_param_scheduler=False)
    assert runner.iter == 7
    torch.testing.assert_close(runner.model.bias.data, model.bias.data)


def test_mmaction_models_import():
    """mmaction2#2714: ``mmaction.models`` imports the DRN module the 1.2.0 wheel lacks."""
    import mmaction.models  # noqa: F401
    from mmaction.registry import MODELS
    assert MODELS.get('Recognizer3D') is not None
    from mmaction.models.localizers.drn.drn import DRN
    with pytest.raises(ImportError, match='mmaction2#2714'):
        DRN()


def write_lvis(tmp_path, num_dets: int):
    """One image, one LVIS category, one box; ``num_dets`` detections of which only the
    lowest-scoring one hits the box."""
    gt = dict(images=[dict(id=1, width=100, height=100, neg_category_ids=[],
                           not_exhaustive_category_ids=[])],
              categories=[dict(id=1, name='thing', frequency='f', image_count=1)],
              annotations=[dict(id=1, image_id=1, category_id=1, bbox=[10, 10, 40, 40],
                                area=1600, segmentation=[[10, 10, 50, 10, 50, 50, 10, 50]])])
    dets = [dict(image_id=1, category_id=1, bbox=[60, 60, 30, 30], score=0.9)
            for _ in range(num_dets - 1)]
    dets.append(dict(image_id=1, category_id=1, bbox=[10, 10, 40, 40], score=0.1))
    gt_path, dt_path = tmp_path / 'gt.json', tmp_path / 'dt.json'
    gt_path.write_text(json.dumps(gt))
    dt_path.write_text(json.dumps(dets))
    return str(gt_path), str(dt_path)


def test_lvis_evaluation_runs_on_numpy2(tmp_path):
    """lvis-api#37: ``LVISEval.accumulate`` uses ``np.float``."""
    from lvis import LVIS, LVISEval, LVISResults
    gt_path, dt_path = write_lvis(tmp_path, num_dets=1)
    gt = LVIS(gt_path)
    lvis_eval = LVISEval(gt, LVISResults(gt, dt_path), 'bbox')
    lvis_eval.run()
    assert lvis_eval.get_results()['AP'] == pytest.approx(1.0)


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason='the fix is for machines without CUDA')
@pytest.mark.slow  # starts a fresh Python (imports the whole stack)
def test_cpu_dist_init_without_cuda():
    """mmengine's pytorch launcher calls ``torch.cuda.set_device`` even for gloo."""
    script = ('import sys; sys.path.insert(0, sys.argv[1]); from projects.eva import compat; '
              'compat.apply(); '
              'from mmengine.dist import init_dist, get_world_size; '
              "init_dist('pytorch', backend='gloo'); print('world', get_world_size())")
    env = dict(os.environ, RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
               MASTER_PORT=str(_free_port()), OMP_NUM_THREADS='1')
    out = subprocess.run([sys.executable, '-c', script, ROOT], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and 'world 1' in out.stdout, out.stderr[-2000:]


@pytest.mark.slow  # starts a fresh Python (imports the whole stack)
def test_deferred_deepspeed_import(tmp_path):
    """mmengine 0.10.7 imports deepspeed with mmengine.runner; with projects.eva it comes
    with the first DeepSpeedStrategy, and on CPU without the JIT-built inference op."""
    pytest.importorskip('deepspeed')
    code = ('import sys\nfrom projects.eva import compat\ncompat.apply()\n'
            'import mmengine.runner\n'
            'from mmengine.registry import STRATEGIES\n'
            'assert "deepspeed" not in sys.modules, "imported eagerly"\n'
            'STRATEGIES.build(dict(type="DeepSpeedStrategy", work_dir=sys.argv[1]))\n'
            'import deepspeed\n'
            'assert not deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"]\n')
    env = dict(os.environ, PYTHONPATH=ROOT, DS_ACCELERATOR='cpu', OMP_NUM_THREADS='1')
    subprocess.run([sys.executable, '-c', code, str(tmp_path)], env=env, check=True, cwd=ROOT)


def test_safe_checkpoint_loading_names_bad_files(tmp_path):
    """mmengine's ``load_from_local`` gave a bare EOFError / UnicodeDecodeError."""
    from mmengine.runner import load_checkpoint
    empty, junk = tmp_path / 'empty.pth', tmp_path / 'junk.pth'
    empty.write_bytes(b'')
    junk.write_bytes(bytes(range(256)) * 4)
    model = torch.nn.Linear(2, 1)
    with pytest.raises(ValueError, match=r'empty\.pth: empty file \(0 bytes\)'):
        load_checkpoint(model, str(empty))
    with pytest.raises(ValueError, match=r'junk\.pth: not a PyTorch checkpoint'):
        load_checkpoint(model, str(junk))


def test_safe_checkpoint_loading_of_a_url(tmp_path, monkeypatch):
    """``load_from`` / ``init_cfg`` with an http(s) URL: downloaded into torch's hub cache and
    read by the same loader (a refused pickle is named there too)."""
    import functools
    import http.server
    import threading

    from mmengine.runner import load_checkpoint
    served = tmp_path / 'served'
    served.mkdir()
    torch.save({'state_dict': {'weight': torch.full((1, 2), 3.), 'bias': torch.ones(1)}},
               str(served / 'lin.pth'))
    torch.save({'state_dict': {}, 'x': os.path.join}, str(served / 'code.pth'))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, kwargs=dict(poll_interval=0.01),  # quick shutdown
                     daemon=True).start()
    try:
        url = f'http://127.0.0.1:{server.server_port}'
        model = torch.nn.Linear(2, 1)
        load_checkpoint(model, f'{url}/lin.pth')
        assert model.weight.tolist() == [[3., 3.]]
        assert (tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'lin.pth').is_file()
        with pytest.raises(RuntimeError, match=r'refused to load .*code\.pth: it pickles'):
            load_checkpoint(model, f'{url}/code.pth')
    finally:
        server.shutdown()


def test_atomic_local_writes(tmp_path, monkeypatch):
    """mmengine's ``LocalBackend.put`` writes in place: a failing write leaves the old file."""
    from mmengine.fileio.backends import LocalBackend
    path = tmp_path / 'epoch_1.pth'
    path.write_bytes(b'complete')

    def fail(*args):
        raise OSError('disk full')
    monkeypatch.setattr(os, 'fsync', fail)
    with pytest.raises(OSError, match='disk full'):
        LocalBackend().put(b'trunc', str(path))
    assert path.read_bytes() == b'complete' and os.listdir(tmp_path) == ['epoch_1.pth']


def test_importing_the_package_patches_nothing():
    """Every fix waits for ``compat.apply()``: importing projects.eva and its task packages
    leaves mmengine, mmcv and torch as they are, and sets no ``EVA_CONFIGS`` (only
    ``compat.apply()``, which the tools call, points it at this repository's configs/). One
    fresh Python for both: it imports the whole stack (~7 s)."""
    code = (
        'import os, sys; sys.path.insert(0, sys.argv[1])\n'
        'from mmengine.fileio.backends import LocalBackend\n'
        'from mmengine.runner.checkpoint import CheckpointLoader\n'
        'import mmengine.dist.utils as du, mmcv.ops, mmcv.transforms as T, torch\n'
        'before = (LocalBackend.put, CheckpointLoader._schemes[""], du._init_dist_pytorch,\n'
        '          mmcv.ops.nms, T.LoadImageFromFile.transform,\n'
        '          len(torch.serialization.get_safe_globals()))\n'
        'import projects.eva, projects.eva.models, projects.eva.engine, '
        'projects.eva.detection, projects.eva.segmentation, projects.eva.apis, '
        'projects.eva.video, projects.eva.clip, projects.eva.pretrain\n'
        'after = (LocalBackend.put, CheckpointLoader._schemes[""], du._init_dist_pytorch,\n'
        '         mmcv.ops.nms, T.LoadImageFromFile.transform,\n'
        '         len(torch.serialization.get_safe_globals()))\n'
        'assert before == after, (before, after)\n'
        'assert "EVA_CONFIGS" not in os.environ, os.environ["EVA_CONFIGS"]\n'
        'from projects.eva import compat; compat.apply()\n'
        'assert LocalBackend.put is not before[0] and mmcv.ops.nms is not before[3]\n'
        'print(os.environ["EVA_CONFIGS"])\n')
    env = {k: v for k, v in os.environ.items() if k != 'EVA_CONFIGS'}
    out = subprocess.run([sys.executable, '-c', code, ROOT], env=dict(env, OMP_NUM_THREADS='1'),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == os.path.join(ROOT, 'configs')
