"""Attention kernels of :class:`EVAViT` whose memory does not grow with N² for its biases.

EVA's detection (ViTDet decomposed rel-pos, 80x80 / 96x96 tokens in global blocks) and
segmentation (BEiT relative-position bias table, 3137 tokens) add a position bias to the
logits. Materialised as a (B, heads, N, N) mask it costs 5.4 GB per global block per image
at 96x96 tokens in fp32, and a mask makes SDPA fall back to a kernel that materialises the
attention matrix too (and saves it for backward). Two exact ways around it, chosen by
measurement (docs/performance.md, ``tools/analysis_tools/benchmark_attention.py``):

- ``fold``: the decomposed terms are a rank-(h + w) bias, so they fold into q and k: q gets
  the ``rel_h`` / ``rel_w`` rows, k gets one-hot columns of each key's row / column, and v is
  zero-padded to the same head dim. SDPA then sees no mask and takes its flash /
  memory-efficient kernels (CPU and CUDA); the price is (d + h + w) / d more attention FLOPs.
- ``chunk``: queries in blocks whose bias is a buffer of ``chunk_bytes``: forward hands
  each block (768 rows of some heads) and its bias to SDPA; backward recomputes each row
  block's logits (flash-style, in PyTorch ops), so nothing N² is kept. Exact for any bias
  made of decomposed terms and a BEiT table (which has full rank and cannot be folded).

The kernels take q, k, v as given: RoPE (EVA-02) is applied to q / k before the call.
"""
import contextlib
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

# On CPU in bf16, PyTorch's SDPA kernel is 1.5-3x slower (forward+backward) than the explicit
# softmax(q k^T) v for up to ~1k tokens, and equal beyond; its forward alone is 2-4x *faster*
# (measured with torch 2.14 on this project's 2-core machine; docs/performance.md). So the
# explicit path is taken only when autograd records the call. GPUs and fp32 always take SDPA.
CPU_BF16_EXPLICIT_ATTN_MAX_TOKENS = 1024

METHODS = ('auto', 'dense', 'fold', 'chunk')
# bytes of one query block's logits in the ``chunk`` kernel (one or two such buffers live)
CHUNK_BYTES = 32 * 2**20
MIN_CHUNK_ROWS = 32
# PyTorch's CPU flash kernel (SDPA) splits queries into 256-row tiles when a call has at
# least 768 query rows, into 32-64-row tiles below (measured: _forward_blocks)
SDPA_TILE_ROWS = 256
SDPA_FULL_TILE_ROWS = 768

RelPos = Tuple[torch.Tensor, torch.Tensor]
PosTable = Tuple[torch.Tensor, torch.Tensor]


def _records_grad(*tensors: Optional[torch.Tensor]) -> bool:
    """Whether autograd will record an op on these (so its backward speed matters)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def dense_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias) v over (B, heads, N, d) tensors, ``bias`` dense."""
    if (q.device.type == 'cpu' and q.dtype == torch.bfloat16
            and q.shape[-2] <= CPU_BF16_EXPLICIT_ATTN_MAX_TOKENS
            and _records_grad(q, k, v, bias)):
        logits = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
        if bias is not None:
            logits = logits + bias
        return logits.softmax(-1) @ v
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)


def decomposed_rel_pos_terms(q: torch.Tensor, rel_pos_h: torch.Tensor,
                             rel_pos_w: torch.Tensor, size: Tuple[int, int]) -> RelPos:
    """The two factors of the MViTv2/ViTDet decomposed bias, without the N² expansion.

    ``q``: (B, heads, h*w, C); ``rel_pos_h`` / ``rel_pos_w``: tables already resized to
    (2h - 1, C) / (2w - 1, C). Returns ``rel_h`` (B, heads, N, h) and ``rel_w``
    (B, heads, N, w): the bias of query i and key j is ``rel_h[i, row(j)] + rel_w[i, col(j)]``.
    """
    h, w = size
    coords_h = torch.arange(h, device=q.device)
    coords_w = torch.arange(w, device=q.device)
    table_h = rel_pos_h[(coords_h[:, None] - coords_h[None, :]) + h - 1]  # (h, h, C)
    table_w = rel_pos_w[(coords_w[:, None] - coords_w[None, :]) + w - 1]  # (w, w, C)
    b, heads, _, dim = q.shape
    r_q = q.reshape(b, heads, h, w, dim)
    rel_h = torch.einsum('bnhwc,hkc->bnhwk', r_q, table_h.to(q.dtype))
    rel_w = torch.einsum('bnhwc,wkc->bnhwk', r_q, table_w.to(q.dtype))
    return rel_h.reshape(b, heads, h * w, h), rel_w.reshape(b, heads, h * w, w)


def expand_bias(q: torch.Tensor, rel_pos: Optional[RelPos] = None,
                pos_table: Optional[PosTable] = None) -> Optional[torch.Tensor]:
    """The dense (B|1, heads, N, N) bias the terms stand for (the reference, N² memory)."""
    bias = None
    if rel_pos is not None:
        rel_h, rel_w = rel_pos
        b, heads, n, h = rel_h.shape
        w = rel_w.shape[-1]
        bias = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(b, heads, n, h * w)
    if pos_table is not None:
        table, index = pos_table
        t = table[index].permute(2, 0, 1).unsqueeze(0).to(q.dtype)
        bias = t if bias is None else bias + t
    return bias


def _check_terms(q, k, rel_pos, pos_table):
    n = k.shape[-2]
    if rel_pos is not None:
        rel_h, rel_w = rel_pos
        if rel_h.shape[-1] * rel_w.shape[-1] != n or rel_h.shape[:-1] != q.shape[:-1] \
                or rel_w.shape[:-1] != q.shape[:-1]:
            raise ValueError(f'rel-pos terms {tuple(rel_h.shape)} / {tuple(rel_w.shape)} do not '
                             f'match q {tuple(q.shape)} and {n} keys on an h x w grid')
    if pos_table is not None:
        table, index = pos_table
        if index.shape != (q.shape[-2], n) or table.shape[-1] != q.shape[1]:
            raise ValueError(f'relative-position table {tuple(table.shape)} / index '
                             f'{tuple(index.shape)} do not match q {tuple(q.shape)}')


# ---------------------------------------------------------------- fold into q / k
def fold_rel_pos(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_pos: RelPos,
                 align: int = 8) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """q' = [q * s, rel_h, rel_w], k' = [k, onehot(row), onehot(col)], v' = [v, 0], padded
    to a multiple of ``align``; SDPA(q', k', v', scale=1)[..., :d] is the biased attention.
    Returns (q', k', v', scale)."""
    rel_h, rel_w = rel_pos
    b, heads, n, d = q.shape
    h, w = rel_h.shape[-1], rel_w.shape[-1]
    width = d + h + w
    pad = (-width) % align
    idx = torch.arange(n, device=q.device)
    onehot = torch.cat([F.one_hot(idx // w, h), F.one_hot(idx % w, w)], -1).to(k.dtype)
    if pad:
        onehot = F.pad(onehot, (0, pad))
    q2 = torch.cat([q * d ** -0.5, rel_h.to(q.dtype), rel_w.to(q.dtype),
                    q.new_zeros(b, heads, n, pad)], -1)
    k2 = torch.cat([k, onehot.expand(b, heads, n, h + w + pad)], -1)
    v2 = F.pad(v, (0, width + pad - v.shape[-1]))
    return q2, k2, v2, 1.0


def folded_attention(q, k, v, rel_pos: RelPos) -> torch.Tensor:
    q2, k2, v2, scale = fold_rel_pos(q, k, v, rel_pos)
    return F.scaled_dot_product_attention(q2, k2, v2, scale=scale)[..., :v.shape[-1]]


# ---------------------------------------------------------------- query chunks, recompute
def _table_block(table, index, r0, r1, dtype, heads=slice(None)) -> torch.Tensor:
    """(1, heads, r1 - r0, N) BEiT-table bias of query rows r0:r1. ``table`` is (heads, L):
    index_select on its contiguous rows by the flat index is ~30x faster on CPU than
    table[index] followed by a permute (measured)."""
    table = table[heads]
    rows, n = r1 - r0, index.shape[-1]
    return table.index_select(1, index[r0:r1].reshape(-1)).view(
        1, table.shape[0], rows, n).to(dtype)


def _block_bias(rel_h, rel_w, table_bias, batch, heads, r0, r1) -> Optional[torch.Tensor]:
    """(B | 1, heads, r1 - r0, N) bias of one forward block (never N x N): the rel-pos terms
    of images ``batch``, heads ``heads``, query rows r0:r1, plus the table block if any."""
    if rel_h is None:
        return table_bias
    h = rel_h[batch, heads, r0:r1]
    w = rel_w[batch, heads, r0:r1]
    bias = (h[..., :, None] + w[..., None, :]).flatten(-2)
    return bias if table_bias is None else bias.add_(table_bias)


def _chunk_logits(q, k, rel_h, rel_w, table, index, r0, r1):
    """(B, heads, r1 - r0, N) logits of query rows r0:r1 with the bias added in place (no
    separate bias block: backward's working set stays at one logits block)."""
    scale = q.shape[-1] ** -0.5
    logits = (q[:, :, r0:r1] * scale) @ k.transpose(-2, -1)
    if rel_h is not None:
        b, heads, rows, _ = logits.shape
        lv = logits.view(b, heads, rows, rel_h.shape[-1], rel_w.shape[-1])
        lv.add_(rel_h[:, :, r0:r1, :, None].to(logits.dtype))
        lv.add_(rel_w[:, :, r0:r1, None, :].to(logits.dtype))
    if table is not None:
        logits.add_(_table_block(table, index, r0, r1, logits.dtype))
    return logits


def _no_autocast(device: torch.device):
    """The chunk kernel computes in its inputs' dtype (autocast would run softmax in fp32)."""
    if device.type in ('cpu', 'cuda'):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def _rows(q, k, chunk_bytes, min_rows=MIN_CHUNK_ROWS):
    """Query rows per backward block: ``chunk_bytes`` of logits, but at least ``min_rows`` (a
    (rows x d) @ (d x N) product with few rows runs far below the GEMM peak)."""
    b, heads, _, _ = q.shape
    per_row = b * heads * k.shape[-2] * max(q.element_size(), 4)
    return max(1, min(q.shape[-2], max(min_rows, chunk_bytes // per_row)))


def _forward_blocks(q, k, chunk_bytes, min_rows=MIN_CHUNK_ROWS) -> Tuple[int, int, int]:
    """(images, heads, query rows) per forward block.

    The forward hands each block to SDPA, whose CPU flash kernel tiles queries by 256 rows
    from 768 rows on (by 32-64 below, at a fraction of the GEMM speed): so a block is
    ``SDPA_FULL_TILE_ROWS`` rows of as many heads (then images) as ``chunk_bytes`` of bias
    hold. All heads x 56 rows, the first form, ran the 96x96 x 16-head forward at 1.24x the
    dense path; 1 head x 768 rows at 0.80x (fp32) / 0.78x (bf16). At least one task per
    thread (a 768-row block is 3 tiles). Where one head of 768 rows exceeds the budget
    (N > 10k in fp32), rows shrink as in backward."""
    b, heads, n, _ = q.shape
    per_row = k.shape[-2] * max(q.element_size(), 4)  # bytes of one (image, head) bias row
    rows = min(n, SDPA_FULL_TILE_ROWS)
    if rows * per_row > chunk_bytes:
        return 1, 1, max(1, min(n, max(min_rows, chunk_bytes // per_row)))
    tiles = -(-rows // SDPA_TILE_ROWS)
    units = max(chunk_bytes // (rows * per_row), -(-torch.get_num_threads() // tiles))
    per_heads = min(heads, units)
    per_images = min(b, max(1, units // heads)) if per_heads == heads else 1
    return per_images, per_heads, rows


class ChunkedAttention(torch.autograd.Function):
    """softmax(q k^T / sqrt(d) + rel-pos terms + table bias) v in query blocks; backward
    recomputes each block's probabilities (no N² tensor is saved). Gradients flow to q, k, v,
    the rel-pos terms and the table; accumulations over blocks are in fp32."""

    @staticmethod
    def forward(ctx, q, k, v, rel_h, rel_w, table, index, chunk_bytes, min_rows):
        with _no_autocast(q.device):
            return ChunkedAttention._forward(ctx, q, k, v, rel_h, rel_w, table, index,
                                             chunk_bytes, min_rows)

    @staticmethod
    def _forward(ctx, q, k, v, rel_h, rel_w, table, index, chunk_bytes, min_rows):
        # each block's bias goes to SDPA as a mask: its fused kernel does the scale /
        # softmax / p @ v in one pass (1.5-1.75x faster than the unfused ops, measured)
        per_images, per_heads, rows = _forward_blocks(q, k, chunk_bytes, min_rows)
        b, heads, n, _ = q.shape
        out = q.new_empty(q.shape[:-1] + (v.shape[-1], ))
        for h0 in range(0, heads, per_heads):
            hs = slice(h0, h0 + per_heads)
            for r0 in range(0, n, rows):
                r1 = min(r0 + rows, n)
                table_bias = (None if table is None else
                              _table_block(table, index, r0, r1, q.dtype, hs))
                for b0 in range(0, b, per_images):
                    bs = slice(b0, b0 + per_images)
                    bias = _block_bias(rel_h, rel_w, table_bias, bs, hs, r0, r1)
                    out[bs, hs, r0:r1] = F.scaled_dot_product_attention(
                        q[bs, hs, r0:r1], k[bs, hs], v[bs, hs], attn_mask=bias)
                    del bias
                del table_bias
        ctx.rows = _rows(q, k, chunk_bytes, min_rows)
        ctx.save_for_backward(q, k, v, rel_h, rel_w, table, index, out)
        return out

    @staticmethod
    def backward(ctx, dout):
        with _no_autocast(dout.device):
            return ChunkedAttention._backward(ctx, dout)

    @staticmethod
    def _backward(ctx, dout):
        q, k, v, rel_h, rel_w, table, index, out = ctx.saved_tensors
        need = ctx.needs_input_grad
        acc = torch.float32 if q.element_size() < 4 else q.dtype
        scale = q.shape[-1] ** -0.5
        dout = dout.to(q.dtype)
        delta = (dout.to(acc) * out.to(acc)).sum(-1, keepdim=True)
        dq = torch.empty_like(q) if need[0] else None
        dk = torch.zeros(k.shape, dtype=acc, device=k.device) if need[1] else None
        dv = torch.zeros(v.shape, dtype=acc, device=v.device) if need[2] else None
        drh = torch.empty_like(rel_h) if rel_h is not None and need[3] else None
        drw = torch.empty_like(rel_w) if rel_w is not None and need[4] else None
        dt = (torch.zeros(table.shape, dtype=acc, device=table.device)  # (heads, L)
              if table is not None and need[5] else None)
        n = q.shape[-2]
        for r0 in range(0, n, ctx.rows):
            r1 = min(r0 + ctx.rows, n)
            p = torch.softmax(_chunk_logits(q, k, rel_h, rel_w, table, index, r0, r1), -1)
            do = dout[:, :, r0:r1]
            if dv is not None:
                dv += (p.transpose(-2, -1) @ do).to(acc)
            ds = do @ v.transpose(-2, -1)
            ds.sub_(delta[:, :, r0:r1].to(ds.dtype)).mul_(p)  # softmax backward, in place
            del p
            if dq is not None:
                dq[:, :, r0:r1] = (ds @ k) * scale
            if dk is not None:
                dk += (ds.transpose(-2, -1) @ (q[:, :, r0:r1] * scale)).to(acc)
            if drh is not None or drw is not None:
                b, heads, rows, _ = ds.shape
                sv = ds.view(b, heads, rows, rel_h.shape[-1], rel_w.shape[-1])
                if drh is not None:
                    drh[:, :, r0:r1] = sv.sum(-1)
                if drw is not None:
                    drw[:, :, r0:r1] = sv.sum(-2)
            if dt is not None:
                g = ds.sum(0).reshape(ds.shape[1], -1).to(acc)
                dt.index_add_(1, index[r0:r1].reshape(-1), g)
            del ds
        cast = lambda g, ref: None if g is None else g.to(ref.dtype)  # noqa: E731
        return (dq, cast(dk, k), cast(dv, v), drh, drw, cast(dt, table), None, None, None)


def chunked_attention(q, k, v, rel_pos: Optional[RelPos] = None,
                      pos_table: Optional[PosTable] = None,
                      chunk_bytes: int = CHUNK_BYTES,
                      min_rows: int = MIN_CHUNK_ROWS) -> torch.Tensor:
    rel_h, rel_w = (t.to(q.dtype) for t in rel_pos) if rel_pos is not None else (None, None)
    table, index = pos_table if pos_table is not None else (None, None)
    if table is not None:  # (heads, L) rows for index_select / index_add_ (int32 index kept)
        table = table.t().contiguous()
    k, v = k.to(q.dtype), v.to(q.dtype)
    return ChunkedAttention.apply(q, k, v, rel_h, rel_w, table, index, chunk_bytes, min_rows)


# ---------------------------------------------------------------- entry point
_FORCED_METHOD: Optional[str] = None


@contextlib.contextmanager
def attention_method(method: Optional[str]):
    """Make every biased :func:`attention` call with ``method='auto'`` take ``method``
    (benchmarks; ``dense`` reproduces the materialised-mask path)."""
    global _FORCED_METHOD
    if method is not None and method not in METHODS:
        raise ValueError(f'attention method must be one of {METHODS}, got {method!r}')
    saved, _FORCED_METHOD = _FORCED_METHOD, method
    try:
        yield
    finally:
        _FORCED_METHOD = saved


# Up to this many tokens per attention call the CPU takes ``fold`` in fp32 (faster than the
# dense path and than ``chunk``'s small blocks, e.g. ViTDet's 16x16 windows) and the dense
# explicit path in bf16 (as without a bias, see CPU_BF16_EXPLICIT_ATTN_MAX_TOKENS); beyond,
# ``chunk`` (docs/performance.md).
CPU_SMALL_TOKENS = 1024


def choose_method(q: torch.Tensor, rel_pos: Optional[RelPos] = None,
                  pos_table: Optional[PosTable] = None) -> str:
    """The measured choice (docs/performance.md). A BEiT table has full rank: ``chunk``.
    Decomposed rel-pos alone: ``fold`` on CUDA (SDPA's flash / memory-efficient kernels);
    on CPU ``chunk`` for long sequences, ``fold`` (fp32) or ``dense`` (bf16) for short."""
    if pos_table is not None:
        return 'chunk'
    if q.device.type == 'cuda':
        return 'fold'
    if q.device.type == 'cpu' and q.shape[-2] <= CPU_SMALL_TOKENS:
        return 'dense' if q.dtype in (torch.bfloat16, torch.float16) else 'fold'
    return 'chunk'


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              bias: Optional[torch.Tensor] = None, *, rel_pos: Optional[RelPos] = None,
              pos_table: Optional[PosTable] = None, method: str = 'auto',
              chunk_bytes: int = CHUNK_BYTES, min_rows: int = MIN_CHUNK_ROWS) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias) v over (B, heads, N, d) tensors.

    The bias is the sum of a dense ``bias`` (materialised by the caller), the decomposed
    rel-pos terms ``rel_pos = (rel_h, rel_w)`` (:func:`decomposed_rel_pos_terms`) and a BEiT
    table ``pos_table = (table (L, heads), index (N, N))`` with bias[h, i, j] =
    table[index[i, j], h]. ``method``: one of ``METHODS``; ``dense`` materialises the bias
    (the reference), ``auto`` takes :func:`choose_method`.
    """
    if method not in METHODS:
        raise ValueError(f'attention method must be one of {METHODS}, got {method!r}')
    if rel_pos is None and pos_table is None:
        return dense_attention(q, k, v, bias)
    _check_terms(q, k, rel_pos, pos_table)
    if method == 'auto' and _FORCED_METHOD not in (None, 'auto'):
        method = _FORCED_METHOD
    if method == 'auto':
        method = 'dense' if bias is not None else choose_method(q, rel_pos, pos_table)
    if method == 'fold' and (pos_table is not None or bias is not None):
        raise ValueError('the fold method takes decomposed rel-pos terms only (a BEiT table '
                         'or a dense bias has full rank): use method="chunk" or "dense"')
    if method == 'chunk' and bias is not None:
        raise ValueError('the chunk method takes rel-pos terms and a BEiT table, not a dense '
                         'bias: use method="dense"')
    if method == 'dense':
        extra = expand_bias(q, rel_pos, pos_table)
        if bias is not None:
            extra = bias if extra is None else extra + bias
        return dense_attention(q, k, v, extra)
    if method == 'fold':
        return folded_attention(q, k, v, rel_pos)
    return chunked_attention(q, k, v, rel_pos, pos_table, chunk_bytes, min_rows)
