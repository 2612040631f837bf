"""tools/analysis_tools/gpu_check.sh is the prepared check for a lent GPU machine; its
--dry-run runs every section on CPU at toy sizes (the same code and configs), so it cannot rot
before a device is lent. The correctness verdict and the guards are checked to fail where
they must: a wrong bf16 attention kernel is a FAIL row, an exception or a spent budget is an
error row and the rest of the table is still written."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys
import time

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools', 'analysis_tools')


def _gpu_check():
    sys.path.insert(0, TOOLS)
    spec = importlib.util.spec_from_file_location('_gpu_check', osp.join(TOOLS, 'gpu_check.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rows(text, section):
    return [line for line in text.splitlines() if line.startswith(f'| {section} |')]


def test_gpu_check_dry_run_writes_one_table(tmp_path, one_thread):
    mod = _gpu_check()
    out = tmp_path / 'gpu_check.md'
    mod.main(['--dry-run', '--out', str(out)])
    text = out.read_text()
    assert text.count('| section | case |') == 1  # one table
    correctness = _rows(text, 'correctness')
    cases = [c[0] for c in mod.correctness_cases(True)]
    assert len(correctness) == 2 * len(cases)  # fp32 and bf16 per case
    for name in cases:
        assert sum(f'| {name} |' in r for r in correctness) == 2, name
    assert all(r.endswith('|') and '| pass |' in r for r in correctness)  # CPU vs CPU
    # the kernel record: fold runs SDPA forward and backward, chunk's backward is its own
    fold = [r for r in correctness if 'fold kernel' in r and 'fp32 vs' in r][0]
    chunk = [r for r in correctness if 'chunk kernel' in r and 'fp32 vs' in r][0]
    assert 'fwd cpu-flash x2, bwd cpu-flash x2' in fold
    assert 'fwd cpu-flash x2, bwd no SDPA op' in chunk
    speed = _rows(text, 'speed')
    assert len(speed) == 4  # (no ckpt, ckpt) x (fwd, fwd+bwd), EVAViT against timm
    assert all('EVAViT' in r and 'timm' in r and 'x |' in r for r in speed)
    mim = _rows(text, 'mim')
    assert len(mim) == 2 and all('MFU' in r for r in mim)
    memory = _rows(text, 'memory')
    assert [r.split(' | ')[1] for r in memory] == [
        'g/14 MIM step (student + teacher)', 'EVA-02-L IN-1K fine-tune at 448',
        'EVA-01 detection backbone at 1280']
    for r in memory:  # the estimate ran and counted something (toy sizes: MiB)
        est = float(r.split('| estimate ')[1].split(' MiB')[0])
        assert est > 0 and 'activations 0 MiB' not in r, r
    assert '| error |' not in text and '| skipped |' not in text


def test_correctness_fails_on_a_wrong_bf16_kernel(monkeypatch, tmp_path, one_thread):
    """An attention kernel off by 10 % under bf16 in the device run only (the CPU runs, the
    reference and the bf16 yardstick, keep the right kernel): the fp32 row passes, the bf16
    row is a FAIL (the check can fail). The fold case: its bf16 attention goes through SDPA on
    CPU too (EVA-01's runs in fp32, EVA-02's short CPU bf16 path is explicit)."""
    mod = _gpu_check()
    import torch.nn.functional as F
    sdpa = F.scaled_dot_product_attention

    def wrong_in_bf16(q, *args, **kwargs):
        out = sdpa(q, *args, **kwargs)
        return out * 1.1 if q.dtype == torch.bfloat16 else out
    fwd_bwd = mod.fwd_bwd

    def device_run_with_wrong_kernel(*args, record=False, **kwargs):
        if not record:  # the CPU reference / yardstick runs
            return fwd_bwd(*args, record=record, **kwargs)
        with monkeypatch.context() as m:
            m.setattr(F, 'scaled_dot_product_attention', wrong_in_bf16)
            return fwd_bwd(*args, record=record, **kwargs)
    monkeypatch.setattr(mod, 'fwd_bwd', device_run_with_wrong_kernel)
    case = [c for c in mod.correctness_cases(True) if 'fold' in c[0]][0]
    monkeypatch.setattr(mod, 'correctness_cases', lambda dry: [case])
    table = mod.Table(str(tmp_path / 't.md'), [])
    clock = mod.Clock(60, ['correctness'])
    clock.start('correctness')
    args = mod.parse_args(['--dry-run'])
    mod.correctness_section(args, 'cpu', table, clock)
    fp32, bf16 = table.rows
    assert 'fp32 vs CPU fp32' in fp32 and '| pass |' in fp32, fp32
    assert 'bf16 vs CPU fp32' in bf16 and '| FAIL |' in bf16, bf16


def test_bf16_limit_is_per_tensor():
    mod = _gpu_check()
    cpu = {'output': 0.01, 'blocks.0.norm1.bias': 0.2}
    ok = {'output': 0.02, 'blocks.0.norm1.bias': 0.5}  # within 3 x CPU + 0.02 each
    assert mod.judge(ok, 'bf16', cpu)[0] == 'pass'
    bad = {'output': 0.06, 'blocks.0.norm1.bias': 0.1}  # output over 3 x 0.01 + 0.02
    assert mod.judge(bad, 'bf16', cpu)[:2] == ('FAIL', 'output')
    assert mod.judge({'output': 2e-4}, 'fp32')[0] == 'FAIL'
    assert mod.judge({'output': 5e-5}, 'fp32')[0] == 'pass'


def test_guards_turn_errors_and_timeouts_into_rows(tmp_path):
    mod = _gpu_check()
    path = tmp_path / 't.md'
    table = mod.Table(str(path), ['preamble'])
    clock = mod.Clock(100, ['speed'])
    clock.start('speed')
    with mod.guarded(table, clock, 'speed', 'raises') as ok:
        assert ok
        raise RuntimeError('CUDA error: an illegal memory access\nsecond line')
    clock.section_end = time.monotonic() + 2.5
    with mod.guarded(table, clock, 'speed', 'too slow') as ok:
        time.sleep(5)
    with mod.guarded(table, clock, 'speed', 'after the budget') as ok:
        assert not ok
    assert not mod.fits(table, clock, 'speed', 'estimated too long', 10.0)
    text = path.read_text()  # written after every row
    assert '| speed | raises |  | RuntimeError: CUDA error: an illegal memory access |  | ' \
           'error |  |' in text
    assert '| speed | too slow |  | CaseTimeout: over the 2 s left in the speed budget |' in text
    assert '| speed | after the budget |  | not run |  | skipped |' in text
    assert ('| speed | estimated too long |  | not run |  | skipped | estimated 10 s > 0 s '
            'left') in text


def test_clock_shares_what_is_left():
    mod = _gpu_check()
    clock = mod.Clock(100, ['correctness', 'memory'])
    first = clock.start('correctness')  # 0.25 / (0.25 + 0.3) of 100 s
    assert 45 < first <= 45.5
    clock.section_end = time.monotonic()  # correctness finished early: memory gets the rest
    assert 99 < clock.start('memory') <= 100


def test_gpu_check_refuses_cpu_without_dry_run():
    mod = _gpu_check()
    if torch.cuda.is_available():
        pytest.skip('a CUDA machine runs the real check')
    with pytest.raises(SystemExit, match='needs a CUDA GPU'):
        mod.device_of(mod.parse_args([]))


@pytest.mark.slow
def test_gpu_check_sh_dry_run(tmp_path):
    """The shell entry point (as the device runs it, minus the wheel install)."""
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1', OUT=str(tmp_path))
    subprocess.run([osp.join(TOOLS, 'gpu_check.sh'), '--dry-run', '--sections', 'mim'],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    text = (tmp_path / 'gpu_check.md').read_text()
    assert len(_rows(text, 'mim')) == 2
    assert '| mim |' in (tmp_path / 'gpu_check.log').read_text()
