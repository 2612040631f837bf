"""tools/analysis_tools/gpu_benchmark.sh is for CUDA machines; its --dry-run runs every row
(backbone table, MIM step with MFU, detection train / inference) on CPU at toy sizes, so
the script is exercised here and cannot rot. No number is asserted."""
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.slow  # a fresh Python through the shell entry point (38 s)
def test_gpu_benchmark_dry_run_writes_one_table(tmp_path):
    out = tmp_path / 'gpu.md'
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1')
    subprocess.run([osp.join(ROOT, 'tools/analysis_tools/gpu_benchmark.sh'), str(out),
                    '--dry-run'], cwd=ROOT, env=env, check=True, capture_output=True)
    text = out.read_text()
    assert text.count('| benchmark | setting |') == 1  # one table
    for name in ('backbone EVAViT', 'backbone timm Eva', 'MIM training step (student + teacher)',
                 'detection training step', 'detection inference'):
        assert f'| {name} |' in text, name
    mim = [line for line in text.splitlines() if line.startswith('| MIM')]
    assert len(mim) == 2 and all('%' in line for line in mim)  # MFU reported


def test_gpu_benchmark_refuses_cpu_without_dry_run():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        '_gpu_bench', osp.join(ROOT, 'tools/analysis_tools/gpu_benchmark.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import pytest
    import torch
    if torch.cuda.is_available():
        pytest.skip('a CUDA machine runs the real benchmark')
    with pytest.raises(SystemExit, match='needs a CUDA GPU'):
        mod.device_of(mod.parse_args([]))
