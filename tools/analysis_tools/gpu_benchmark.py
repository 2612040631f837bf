"""The GPU benchmark behind ``gpu_benchmark.sh``: one markdown table for a CUDA machine.

    python tools/analysis_tools/gpu_benchmark.py [--out work_dirs/gpu_benchmark.md]
        [--archs base large giant] [--batch 32] [--mim-batch 32] [--steps 10]
        [--peak-tflops 989] [--skip backbone mim det] [--dry-run]

Rows:
- backbone: EVAViT vs timm Eva (vs mmpretrain BEiTViT without checkpointing), bf16
  autocast, SDPA restricted to its fused kernels (cuDNN / flash / efficient; no math), with
  and without activation checkpointing, fwd and fwd+bwd (the harness of
  ``benchmark_backbone.py``);
- ViT-g/14 MIM training step (student + frozen CLIP-L/14 teacher, AdamW, bf16 autocast) of
  the real pretraining config: images/s, MFU (FLOPs of the step counted by torch's FLOP
  counter: student forward + backward, teacher forward) against the measured bf16 matmul peak and, with
  ``--peak-tflops``, the nominal one (the checkpointing row counts the model's FLOPs only,
  not the recomputed forward: it shows what checkpointing costs);
- detection: a Cascade Mask R-CNN training step at 1280 and inference at 1536 (the real
  EVA-g configs, random weights, a synthetic image with boxes and masks), peak memory.

``--dry-run`` runs every row on CPU at toy sizes (the demo configs): the code path is tested
on machines without a GPU; the numbers are meaningless there.
"""
import argparse
import contextlib
import os
import os.path as osp
import sys
import time

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import torch  # noqa: E402

from projects.eva import compat  # noqa: E402

compat.apply()  # the pinned stack's fixes, before mmengine.runner is imported

CONFIGS = dict(
    mim='configs/pretrain/eva-mim_vit-g-p14_128xb32-150e_merged30m.py',
    det_train='configs/detection/cascade-mask-rcnn_eva-g-p16_lsj-1280_64xb1-45k_coco-det.py',
    det_test='configs/detection/cascade-mask-rcnn_eva-g-p16_lsj-1280_64xb1-45k_coco-det_'
             'test-1536.py')
DRY_CONFIGS = dict(
    mim='configs/demo/eva-mim_vit-tiny-p14_1xb32-8e_shapes.py',
    det_train='configs/demo/eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py',
    det_test='configs/demo/eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py')
# the measured bf16 peak: 8192^3 products reach an H100's / H200's ~790 TFLOP/s (the device
# tool's KINDS.md); at 2048 launch overhead shows and the MFU would be overstated
PEAK_MATMUL_SIZE = dict(cuda=8192, cpu=1024)
HEADER = ['| benchmark | setting | img/s | s/step | TFLOP/s | MFU (measured peak) | '
          'MFU (nominal) | peak GiB |', '|---|---|---|---|---|---|---|---|']


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='work_dirs/gpu_benchmark.md')
    p.add_argument('--archs', nargs='+', default=['base', 'large', 'giant'])
    p.add_argument('--batch', type=int, default=32, help='backbone table batch')
    p.add_argument('--mim-batch', type=int, default=32)
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--peak-tflops', type=float, help='nominal dense bf16 peak (H100 SXM: 989)')
    p.add_argument('--skip', nargs='*', default=[], choices=['backbone', 'mim', 'det'])
    p.add_argument('--dry-run', action='store_true', help='CPU, toy sizes: checks the code path')
    args = p.parse_args(argv)
    if args.dry_run:
        args.archs, args.batch, args.mim_batch = ['48,2,3,96'], 2, 2
        args.steps, args.warmup = 1, 0
    return args


def device_of(args):
    if args.dry_run:
        return 'cpu'
    if not torch.cuda.is_available():
        raise SystemExit('gpu_benchmark needs a CUDA GPU (use --dry-run to check it on CPU)')
    return 'cuda'


def fused_sdpa(device):
    """On CUDA, SDPA may only take its fused kernels (cuDNN, flash, memory-efficient; torch
    picks among them in its own order): a fallback to the math kernel (which materialises the
    attention matrix) is an error, not a slow number."""
    if device != 'cuda':
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION,
                        SDPBackend.EFFICIENT_ATTENTION])


def autocast(device):
    return torch.autocast(device, dtype=torch.bfloat16)


def sync(device):
    if device == 'cuda':
        torch.cuda.synchronize()


def reset_peak(device):
    if device == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device):
    return torch.cuda.max_memory_allocated() / 2**30 if device == 'cuda' else None


def timed(fn, steps, warmup, device):
    for _ in range(warmup):
        fn()
    sync(device)
    reset_peak(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / steps


def row(name, setting, batch, sec, flops=None, peaks=None, nominal=None, mem=None):
    f = lambda v, fmt: '' if v is None else format(v, fmt)  # noqa: E731
    tf = flops / sec / 1e12 if flops else None
    mfu = flops / sec / peaks if flops and peaks else None
    mfu_n = tf / nominal if tf and nominal else None
    return (f'| {name} | {setting} | {batch / sec:.2f} | {sec:.3f} | {f(tf, ".1f")} | '
            f'{f(mfu and 100 * mfu, ".0f")}{"%" if mfu else ""} | '
            f'{f(mfu_n and 100 * mfu_n, ".0f")}{"%" if mfu_n else ""} | {f(mem, ".1f")} |')


# ---------------------------------------------------------------- rows
def backbone_rows(args, device, peak):
    import benchmark_backbone as bench
    archs = [bench_arch(a) for a in args.archs]
    with fused_sdpa(device):
        rows, _ = bench.run_benchmark(archs, 224, 14, args.batch, ['bf16'], (False, True),
                                      ('fwd', 'fwd+bwd'), device, max(args.steps, 1),
                                      args.warmup, log=lambda s: print(s, file=sys.stderr))
    out = []
    for r in rows:
        sec = r['seconds']
        flops = r['tflops'] * 1e12 * sec
        mem = r['peak_mib'] / 1024 if r['peak_mib'] is not None else None
        out.append(row(f"backbone {r['model']}", f"{r['arch']}/14@224 bf16 "
                       f"{'ckpt' if r['cp'] else 'no ckpt'} {r['mode']}", r['batch'], sec,
                       flops, peak, args.peak_tflops, mem))
    return out


def bench_arch(s):
    if ',' in s:
        w, layers, heads, ffn = (int(v) for v in s.split(','))
        return dict(embed_dims=w, num_layers=layers, num_heads=heads, feedforward_channels=ffn)
    return s


def _cfg(path):
    from mmengine.config import Config
    return Config.fromfile(osp.join(ROOT, path))


def _mim_model(cfg, device):
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    cfg.model.teacher.checkpoint = None  # random teacher weights: a speed benchmark
    with DefaultScope.overwrite_default_scope('mmpretrain'), torch.device(device):
        return MODELS.build(cfg.model)


def _mim_batch(model, batch, device):
    from mmpretrain.structures import DataSample
    size = model.backbone.img_size
    grid = model.backbone.grid_size
    g = torch.Generator().manual_seed(0)
    img = torch.randn(batch, 3, *size, device=device)
    samples = []
    for _ in range(batch):
        s = DataSample()
        s.mask = (torch.rand(grid, generator=g) < 0.4).to(device)  # EVA-01: 40% masked
        samples.append(s)
    return img, samples


def mim_results(path, batch, steps, warmup, device, cps=(False, True)):
    """Time the MIM training step of the config at ``path`` (student + frozen teacher, AdamW,
    bf16 autocast): one dict per checkpointing setting with ``seconds`` per step, the step's
    ``flops`` and the CUDA ``peak_bytes`` over the timed steps (optimizer states included;
    None on CPU). ``gpu_check.py`` reuses it for its speed and memory rows."""
    from projects.eva.analysis.flops import count_flops
    cfg = _cfg(path)
    model = _mim_model(cfg, device).train()
    img, samples = _mim_batch(model, batch, device)
    # FLOPs of one step counted on the real tensors (the boolean mask indexing is
    # data-dependent, so not on meta): student forward + backward, teacher forward, head
    with autocast(device), fused_sdpa(device):
        flops, _ = count_flops(model, (img, ), backward=True,
                               forward_fn=lambda x: model.loss(x, samples)['loss'])
    model.zero_grad(set_to_none=True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, fused=device == 'cuda')
    results = []
    for cp in cps:
        model.backbone.with_cp = cp

        def step():
            with autocast(device), fused_sdpa(device):
                loss = model.loss(img, samples)['loss']
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        sec = timed(step, steps, warmup, device)
        peak = torch.cuda.max_memory_allocated() if device == 'cuda' else None
        results.append(dict(cp=cp, seconds=sec, flops=flops, batch=batch, peak_bytes=peak))
    return results


def mim_rows(args, device, peak):
    path = (DRY_CONFIGS if args.dry_run else CONFIGS)['mim']
    rows = []
    for r in mim_results(path, args.mim_batch, args.steps, args.warmup, device):
        mem = r['peak_bytes'] / 2**30 if r['peak_bytes'] is not None else None
        rows.append(row('MIM training step (student + teacher)',
                        f"{osp.basename(path)} b{args.mim_batch} bf16 "
                        f"{'ckpt' if r['cp'] else 'no ckpt'}", args.mim_batch, r['seconds'],
                        r['flops'], peak, args.peak_tflops, mem))
    return rows


class _BF16(torch.nn.Module):
    """Runs a module under bf16 autocast and hands fp32 features on: the backbone and neck
    in bf16, the RPN / RoI heads (NMS, RoIAlign: fp32-only in mmcv) in fp32."""

    def __init__(self, module, device):
        super().__init__()
        self.module, self.device = module, device

    def forward(self, *args):
        with autocast(self.device), fused_sdpa(self.device):
            out = self.module(*args)
        return tuple(o.float() for o in out)


def _det_model(cfg, device):
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope
    from mmdet.registry import MODELS
    from projects.eva.apis.build import strip_pretrained
    register_all_modules(init_default_scope=False)
    strip_pretrained(cfg.model)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    model.backbone = _BF16(model.backbone, device)
    model.neck = _BF16(model.neck, device)
    return model.to(device)


def _det_sample(size, device, n=8):
    import numpy as np
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    g = np.random.default_rng(0)
    xy = g.uniform(0, size * 0.7, (n, 2))
    wh = g.uniform(size * 0.05, size * 0.3, (n, 2))
    boxes = np.concatenate([xy, np.minimum(xy + wh, size - 1)], 1).astype(np.float32)
    masks = np.zeros((n, size, size), np.uint8)
    for i, (x0, y0, x1, y1) in enumerate(boxes.astype(int)):
        masks[i, y0:y1, x0:x1] = 1
    meta = dict(img_id=0, img_shape=(size, size), ori_shape=(size, size), scale_factor=(1., 1.),
                pad_shape=(size, size), batch_input_shape=(size, size), flip=False)
    s = DetDataSample(metainfo=meta)
    s.gt_instances = InstanceData(bboxes=torch.from_numpy(boxes), labels=torch.arange(n) % 3,
                                  masks=BitmapMasks(masks, size, size))
    return s.to(device)


def det_rows(args, device):
    from projects.eva.analysis.memory import config_input_shape
    cfgs = DRY_CONFIGS if args.dry_run else CONFIGS
    rows = []
    cfg = _cfg(cfgs['det_train'])
    size = config_input_shape(cfg)[-1]
    model = _det_model(cfg, device).train()
    x = torch.randn(1, 3, size, size, device=device)
    sample = _det_sample(size, device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5,
                            fused=device == 'cuda')

    def train_step():
        losses = model.loss(x, [sample])
        loss = sum(v.sum() for k, v in losses.items() if 'loss' in k and torch.is_tensor(v))
        loss = loss + sum(sum(t.sum() for t in v) for k, v in losses.items()
                          if 'loss' in k and isinstance(v, (list, tuple)))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    sec = timed(train_step, args.steps, args.warmup, device)
    rows.append(row('detection training step', f'{osp.basename(cfgs["det_train"])} '
                    f'{size}x{size} b1, backbone + neck bf16', 1, sec, mem=peak_gib(device)))
    del model, opt
    cfg = _cfg(cfgs['det_test'])
    size = config_input_shape(cfg, mode='test')[-1]
    model = _det_model(cfg, device).eval()
    x = torch.randn(1, 3, size, size, device=device)
    sample = _det_sample(size, device)

    def infer():
        with torch.no_grad():
            model.predict(x, [sample])
    sec = timed(infer, args.steps, min(args.warmup, 1), device)
    rows.append(row('detection inference', f'{osp.basename(cfgs["det_test"])} '
                    f'{size}x{size} b1, backbone + neck bf16', 1, sec, mem=peak_gib(device)))
    return rows


def main(argv=None):
    args = parse_args(argv)
    device = device_of(args)
    from projects.eva.analysis.measure import matmul_peak_flops
    peak = matmul_peak_flops(device, 'bf16', size=PEAK_MATMUL_SIZE[device])
    name = torch.cuda.get_device_name() if device == 'cuda' else 'CPU (dry run)'
    lines = [f'Device: {name}; torch {torch.__version__}; measured bf16 matmul peak '
             f'{peak / 1e12:.1f} TFLOP/s' + (f'; nominal {args.peak_tflops} TFLOP/s'
                                            if args.peak_tflops else ''), ''] + HEADER
    if 'backbone' not in args.skip:
        lines += backbone_rows(args, device, peak)
    if 'mim' not in args.skip:
        lines += mim_rows(args, device, peak)
    if 'det' not in args.skip:
        lines += det_rows(args, device)
    text = '\n'.join(lines)
    print(text)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    return lines


if __name__ == '__main__':
    main()
