"""Bounded-memory attention kernels (projects/eva/models/attention.py): exact against the
dense-mask path (forward and gradients), never an N x N tensor, the kernel SDPA takes.
Speed and memory sizes are benchmarks (tools/analysis_tools/benchmark_attention.py)."""
import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from projects.eva.models import attention as A
from projects.eva.models.eva_vit import Block, EVAViT, beit_relative_position_index


class Recorder(TorchDispatchMode):
    """Every aten op called, and the largest tensor any op returned (elements)."""

    def __init__(self):
        super().__init__()
        self.ops, self.largest = [], 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops.append(str(func))
        for t in (out if isinstance(out, (tuple, list)) else (out, )):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def _inputs(b, heads, h, w, d, dtype=torch.float64, cls=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = h * w + cls
    r = lambda *s, std=1.: (torch.randn(*s, generator=g) * std).to(dtype).requires_grad_()  # noqa
    q, k, v = r(b, heads, n, d), r(b, heads, n, d), r(b, heads, n, d)
    rph, rpw = r(2 * h - 1, d, std=0.3), r(2 * w - 1, d, std=0.3)
    index = beit_relative_position_index(h, w).int()
    if not cls:
        index = index[1:, 1:]
    table = r(int(beit_relative_position_index(h, w).max()) + 1, heads)
    return q, k, v, rph, rpw, table, index


def _run(method, q, k, v, rph, rpw, table, index, size, rel=True, tab=False, **kw):
    terms = {}
    if rel:
        terms['rel_pos'] = A.decomposed_rel_pos_terms(q, rph, rpw, size)
    if tab:
        terms['pos_table'] = (table, index)
    out = A.attention(q, k, v, method=method, **terms, **kw)
    params = [q, k, v] + ([rph, rpw] if rel else []) + ([table] if tab else [])
    grads = torch.autograd.grad((out * out.sin()).sum(), params)
    return out, grads


@pytest.mark.parametrize('rel,tab,methods', [(True, False, ('chunk', 'fold')),
                                             (False, True, ('chunk', )),
                                             (True, True, ('chunk', ))])
@pytest.mark.parametrize('dtype,tol', [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_kernels_equal_dense_forward_and_grads(rel, tab, methods, dtype, tol):
    """Non-square grid, several query blocks (a 3-row chunk), q/k/v as any RoPE would leave
    them: output and every gradient (q, k, v, both rel-pos tables, the BEiT table) match."""
    size = (5, 7)
    inputs = _inputs(2, 3, *size, 8, dtype)
    ref, gref = _run('dense', *inputs, size, rel, tab)
    for method in methods:
        kw = dict(chunk_bytes=1, min_rows=3) if method == 'chunk' else {}
        out, grads = _run(method, *inputs, size, rel, tab, **kw)
        torch.testing.assert_close(out, ref, atol=tol, rtol=tol)
        for g, gr in zip(grads, gref):
            torch.testing.assert_close(g, gr, atol=tol * max(1., gr.abs().max().item()),
                                       rtol=tol)


@pytest.mark.parametrize('units,blocks', [(2, (1, 2, 35)), (3, (1, 3, 35)), (6, (2, 3, 35))])
def test_chunk_forward_blocks_of_heads_and_images(units, blocks, one_thread):
    """The forward's blocks group heads, then images (a head group that does not divide the
    heads, all heads of one image, both images): the output still matches the dense path."""
    size = (5, 7)
    inputs = _inputs(2, 3, *size, 8, torch.float64)
    q, k = inputs[:2]
    unit = 35 * 35 * 8  # one (image, head) block of 35 rows x 35 keys in fp64
    assert A._forward_blocks(q, k, units * unit) == blocks
    ref, _ = _run('dense', *inputs, size, True, True)
    out, _ = _run('chunk', *inputs, size, True, True, chunk_bytes=units * unit)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)


def test_chunk_forward_blocks_fill_the_sdpa_tiles():
    """At ViTDet's 96x96 test grid, 16 heads: 768-row blocks of one head (PyTorch's CPU flash
    kernel tiles 768+ rows by 256, fewer by 32-64; one head of all rows per block measured
    0.80x the dense path's forward, all heads of 56 rows 1.24x), more heads where threads
    would idle; the BEiT table's 3137 tokens: 3 heads in the 32 MiB budget."""
    meta = lambda n, heads=16: torch.empty(1, heads, n, 64, device='meta')  # noqa: E731
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert A._forward_blocks(meta(9216), meta(9216), A.CHUNK_BYTES) == (1, 1, 768)
        assert A._forward_blocks(meta(3137), meta(3137), A.CHUNK_BYTES) == (1, 3, 768)
        torch.set_num_threads(16)  # 16 threads: 6 heads x 3 tiles
        assert A._forward_blocks(meta(9216), meta(9216), A.CHUNK_BYTES) == (1, 6, 768)
        # beyond one 768-row head in the budget (128x128 tokens): fewer rows, one head
        assert A._forward_blocks(meta(16384), meta(16384), A.CHUNK_BYTES) == (1, 1, 512)
    finally:
        torch.set_num_threads(threads)


def test_chunk_never_builds_an_n_by_n_tensor():
    """Forward and backward of the chunk kernel: no tensor has B*heads*N*N elements; the
    dense path does (this is what the kernel is for)."""
    size = (12, 12)
    b, heads, n = 1, 2, 144
    inputs = _inputs(b, heads, *size, 8, torch.float32)
    budget = 8 * b * heads * n * 4  # 8 query rows per block
    with Recorder() as rec:
        _run('chunk', *inputs, size, True, True, chunk_bytes=budget, min_rows=1)
    # largest: the (B, heads, N, h) rel-pos factor, 12 x B x heads x N; a block is 8 rows
    assert rec.largest <= 12 * b * heads * n
    with Recorder() as rec:
        _run('dense', *inputs, size, True, True)
    assert rec.largest >= b * heads * n * n


def test_fold_takes_the_unmasked_flash_kernel_on_cpu():
    """The folded q/k/v have one head dim and SDPA gets no mask: CPU picks its flash kernel
    forward and backward (with a mask it would not be memory-bounded)."""
    size = (6, 6)
    inputs = _inputs(1, 2, *size, 8, torch.float32)
    with Recorder() as rec:
        _run('fold', *inputs, size)
    flash = [op for op in rec.ops if 'flash_attention' in op]
    assert any('backward' in op for op in flash) and any('backward' not in op for op in flash)
    q2, k2, v2, scale = A.fold_rel_pos(*inputs[:3], A.decomposed_rel_pos_terms(
        inputs[0], inputs[3], inputs[4], size))
    assert q2.shape[-1] == k2.shape[-1] == v2.shape[-1] == 24  # 8 + 6 + 6, aligned to 8
    assert scale == 1.0


def test_bf16_kernels_as_accurate_as_dense_bf16():
    """bf16 error against the fp32 result: the kernels are no worse than the dense path."""
    size = (8, 8)
    inputs = _inputs(2, 2, *size, 16, torch.float32)
    exact, _ = _run('dense', *inputs, size)
    low = [t.detach().bfloat16().requires_grad_() if t.is_floating_point() else t
           for t in inputs]
    dense_err = (_run('dense', *low, size)[0].float() - exact).abs().max()
    for method in ('chunk', 'fold'):
        err = (_run(method, *low, size)[0].float() - exact).abs().max()
        assert err <= 2 * dense_err + 1e-3, (method, err, dense_err)


@pytest.mark.parametrize('kind', ['global', 'window', 'table'])
def test_block_default_path_equals_dense(kind):
    """A Block (qkv, rel-pos / BEiT table, MLP) on the default path gives the dense path's
    output and parameter gradients, also under bf16 autocast with EVA-01's fp32 attention."""
    torch.manual_seed(0)
    kw = {'global': dict(rel_pos_size=(6, 6)), 'table': dict(rel_pos_bias_size=(6, 6)),
          'window': dict(rel_pos_size=(6, 6), window_size=4)}[kind]
    blk = Block(32, 4, 64, **kw)
    with torch.no_grad():
        for name, p in blk.named_parameters():
            if 'rel' in name:
                p.normal_(std=0.5)
    x = torch.randn(2, 36 + (kind == 'table'), 32)
    hw = None if kind == 'table' else (6, 6)

    def run(method):
        with A.attention_method(method):
            out = blk(x, hw)
        grads = torch.autograd.grad(out.square().sum(), list(blk.parameters()))
        return out, grads

    ref, gref = run('dense')
    out, grads = run(None)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    for g, gr in zip(grads, gref):
        torch.testing.assert_close(g, gr, atol=1e-5 * max(1., gr.abs().max().item()), rtol=1e-5)
    blk.attn.fp32_attention = True
    with torch.autocast('cpu', dtype=torch.bfloat16):
        low = run(None)[0]
    torch.testing.assert_close(low.float(), ref, atol=0.05, rtol=0.05)


def test_default_method_choice():
    q = torch.zeros(1, 1, 4, 8)
    rel = (torch.zeros(1, 1, 4, 2), torch.zeros(1, 1, 4, 2))
    table = (torch.zeros(12, 1), torch.zeros(4, 4, dtype=torch.int))
    long_q = torch.zeros(1, 1, A.CPU_SMALL_TOKENS + 1, 8)
    # measured on CPU (docs/performance.md): chunk for long sequences, fold (fp32) or the
    # explicit dense path (bf16) for short ones such as ViTDet windows
    assert A.choose_method(long_q, rel) == 'chunk'
    assert A.choose_method(long_q.bfloat16(), rel) == 'chunk'
    assert A.choose_method(q, rel) == 'fold'
    assert A.choose_method(q.bfloat16(), rel) == 'dense'
    assert A.choose_method(q, rel, table) == 'chunk'
    assert A.choose_method(long_q.to('meta'), rel) == 'chunk'
    with pytest.raises(ValueError, match='fold method takes decomposed'):
        A.attention(q, q, q, rel_pos=rel, pos_table=table, method='fold')
    with pytest.raises(ValueError, match='must be one of'):
        A.attention(q, q, q, rel_pos=rel, method='flash')
    with pytest.raises(ValueError, match='do not match'):
        A.attention(q, q, q, rel_pos=(rel[0], rel[1][..., :1]))


def test_meta_device_forward_saves_no_n_by_n():
    """The memory estimate runs models on meta: the kernel runs there and what it saves for
    backward is linear in N (q, k, v, the terms and the output)."""
    from projects.eva.analysis.measure import count_saved_activations
    with torch.device('meta'):
        m = EVAViT(dict(embed_dims=64, num_layers=1, num_heads=2, feedforward_channels=64),
                   img_size=512, patch_size=16, with_cls_token=False, use_rel_pos=True,
                   final_norm=False)
        x = torch.randn(1, 3, 512, 512)
    with count_saved_activations(m) as res:
        m(x)
    assert res['bytes'] < 1024 * 1024 * 2 * 4  # one (1, 2, N, N) fp32 mask would be 8 MiB


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')


@cuda
@pytest.mark.parametrize('backend', ['FLASH_ATTENTION', 'EFFICIENT_ATTENTION'])
def test_cuda_fold_dispatches_fused_sdpa(backend):
    """On CUDA the default path folds the decomposed terms and SDPA runs its flash /
    memory-efficient kernel (sdpa_kernel restricts SDPA to that one backend: it raises if the
    inputs cannot take it)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    size = (16, 16)
    inputs = [t.detach().cuda().half().requires_grad_() if t.is_floating_point() else t.cuda()
              for t in _inputs(2, 4, *size, 64, torch.float32)]
    assert A.choose_method(inputs[0], (inputs[0], inputs[0])) == 'fold'
    ref, gref = _run('dense', *inputs, size)
    with sdpa_kernel([getattr(SDPBackend, backend)]):
        out, grads = _run('auto', *inputs, size)
    torch.testing.assert_close(out, ref, atol=2e-2, rtol=2e-2)


def test_benchmark_tool_runs_tiny(capsys):
    """tools/analysis_tools/benchmark_attention.py at toy size (timing only; the memory
    cells spawn one process each): every method runs and matches the dense path."""
    import importlib.util
    import os.path as osp
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    spec = importlib.util.spec_from_file_location(
        '_bench_attn', osp.join(root, 'tools/analysis_tools/benchmark_attention.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for case in ('global', 'window', 'table'):
        # window: grid 6 in windows of 4 is padded to 8, 4 windows (the case crashed before)
        rows = mod.main(['--case', case, '--grid', '6', '--window', '4', '--heads', '2',
                         '--rounds', '1', '--no-memory', '--dtypes', 'fp32', '--modes',
                         'fwd+bwd', '--threads', '1'])
        methods = {r['method'] for r in rows}
        assert methods == ({'dense', 'chunk'} if case == 'table' else {'dense', 'chunk', 'fold'})
        for r in rows:
            assert r['time'] > 0
            if r['method'] != 'dense':
                assert r['diff'][0] < 1e-5 and r['diff'][1] < 1e-5
    assert '| attn | fp32 | fwd+bwd | chunk |' in capsys.readouterr().out


def test_attention_cpu_bf16_explicit_path_matches_sdpa(monkeypatch):
    """CPU bf16 up to 1024 tokens takes the explicit softmax path when autograd records the
    call (its backward is faster there, see docs/performance.md); it must agree with SDPA in
    fp32 to bf16 precision, bias included; inference (no grad: SDPA's forward is faster), fp32
    and longer sequences still go through SDPA."""
    import torch.nn.functional as F
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 50, 16) for _ in range(3))
    bias = torch.randn(2, 3, 50, 50)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    calls = []
    sdpa = F.scaled_dot_product_attention
    monkeypatch.setattr(A.F, 'scaled_dot_product_attention',
                        lambda *a, **kw: calls.append(a[0].dtype) or sdpa(*a, **kw))
    q16 = q.bfloat16().requires_grad_()
    out = A.attention(q16, k.bfloat16(), v.bfloat16(), bias.bfloat16())
    assert calls == [] and out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(A.attention(q, k, v, bias), ref)
    assert calls == [torch.float32]
    n = A.CPU_BF16_EXPLICIT_ATTN_MAX_TOKENS + 1
    long_q = torch.randn(1, 1, n, 8, dtype=torch.bfloat16, requires_grad=True)
    A.attention(long_q, long_q, long_q)
    assert calls == [torch.float32, torch.bfloat16]
    with torch.no_grad():  # inference: SDPA, same numbers to bf16 precision
        out_ng = A.attention(q16, k.bfloat16(), v.bfloat16(), bias.bfloat16())
    assert calls == [torch.float32, torch.bfloat16, torch.bfloat16]
    torch.testing.assert_close(out_ng.float(), ref, atol=3e-2, rtol=3e-2)
    A.attention(q.bfloat16(), k.bfloat16(), v.bfloat16())  # nothing requires grad
    assert calls[-1] == torch.bfloat16 and len(calls) == 4
