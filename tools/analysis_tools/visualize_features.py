"""Look inside EVA: PCA of the patch features as RGB and cls-token attention maps, as PNGs.

    python tools/analysis_tools/visualize_features.py CONFIG CHECKPOINT IMAGE [IMAGE ...]
        [--out-dir DIR] [--blocks -1 ...] [--pca-block -1] [--size H W]

Works on any config whose model holds an ``EVAViT`` (classifier, EVA-CLIP, MIM, detector,
ViT-Adapter segmentor). Per image it writes, at the image's own size:

* ``<name>_pca.png``: the first three principal components of the ``--pca-block`` block's
  patch tokens (PCA over this image's patches), min-max scaled per component, as R, G, B;
* ``<name>_attn_block<i>.png`` per ``--blocks`` entry: the cls token's attention to every
  patch (softmax row, mean over heads) as a heat map over the image (needs a cls token and
  global attention: not for the detection backbone);
* ``<name>_maps.npz``: the maps on the patch grid (``pca`` (h, w, 3), ``attn_block<i>``
  (heads, h, w)).

The attention is not computed by a second implementation inside the model: a forward
pre-hook on each chosen block's attention module records its input (and its rel-pos / RoPE
arguments), and the cls row of softmax(q k^T / sqrt(d) + bias) is recomputed here from the
module's own projections (``Attention.project_qkv``) after the forward.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def preprocess(model, image_bgr: np.ndarray, size: Tuple[int, int]) -> torch.Tensor:
    """Resize to ``size`` (H, W) and normalise as the model's data preprocessor does."""
    import mmcv
    pre = model.data_preprocessor
    img = mmcv.imresize(image_bgr, (size[1], size[0]), interpolation='bicubic')
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float()
    if any(getattr(pre, a, False) for a in ('_channel_conversion', 'channel_conversion',
                                            'to_rgb', 'bgr_to_rgb')):
        x = x[[2, 1, 0]]
    mean, std = pre.mean.view(-1, 1, 1).cpu(), pre.std.view(-1, 1, 1).cpu()
    return ((x - mean) / std)[None]


def attention_probs(attn, x: torch.Tensor, hw=None, rope=None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias) (B, heads, N, N) of an ``Attention`` module for its
    input ``x``, from the module's own q/k projections, RoPE and relative-position terms."""
    from projects.eva.models import eva_vit
    q, k, _ = attn.project_qkv(x)
    if rope is not None:
        q, k = eva_vit.apply_rope(q, rope), eva_vit.apply_rope(k, rope)
    logits = (q.float() * q.shape[-1] ** -0.5) @ k.float().transpose(-2, -1)
    if attn.rel_pos_size:
        logits = logits + eva_vit.decomposed_rel_pos_bias(
            q, attn.rel_pos_h, attn.rel_pos_w, hw, attn.rel_pos_interp).float()
    if getattr(attn, 'rel_pos_bias_size', None):
        logits = logits + attn.rel_pos_bias(q.shape[-2]).float()
    return logits.softmax(-1)


@torch.no_grad()
def extract(model, x: torch.Tensor, attn_blocks: Sequence[int],
            pca_block: int) -> Tuple[torch.Tensor, Dict[int, torch.Tensor], Tuple[int, int]]:
    """One forward of the backbone with hooks: the ``pca_block`` patch tokens (N, C), the cls
    attention rows ``{block: (heads, N)}`` and the patch grid."""
    from projects.eva.apis.build import vit_of
    vit = vit_of(model)
    n = vit.num_layers
    attn_blocks = sorted({b % n for b in attn_blocks})
    pca_block %= n
    if attn_blocks and vit.cls_token is None:
        raise ValueError('cls-token attention maps need a backbone with a cls token; this '
                         'one has none (detection backbone): use --blocks with no value')
    for i in attn_blocks:
        if vit.blocks[i].window_size:
            raise ValueError(f'block {i} uses window attention: no cls token attends globally')
    saved: Dict[str, object] = {}
    hooks = [vit.blocks[pca_block].register_forward_hook(
        lambda m, a, out: saved.__setitem__('tokens', out))]

    def grab(i):
        def hook(module, args, kwargs):
            saved[i] = (args, kwargs)
        return hook
    for i in attn_blocks:
        hooks.append(vit.blocks[i].attn.register_forward_pre_hook(grab(i), with_kwargs=True))
    try:
        model.backbone(x)
    finally:
        for h in hooks:
            h.remove()
    grid = (x.shape[-2] // vit.patch_size, x.shape[-1] // vit.patch_size)
    tokens = saved['tokens'][0]
    extra = tokens.shape[0] - grid[0] * grid[1]  # the adapter's blocks see the cls token too
    feats = tokens[extra:].float()
    maps = {}
    for i in attn_blocks:
        args, kwargs = saved[i]
        probs = attention_probs(vit.blocks[i].attn, *args, **kwargs)[0]
        maps[i] = probs[:, 0, probs.shape[-1] - grid[0] * grid[1]:]
    return feats, maps, grid


def pca_rgb(feats: np.ndarray, grid: Tuple[int, int]) -> np.ndarray:
    """(N, C) features -> (h, w, 3) in [0, 1]: projections on the top 3 principal axes,
    each min-max scaled. Signs are fixed (largest loading positive) so maps are stable."""
    x = feats.astype(np.float64) - feats.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    comps = vt[:3]
    comps *= np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(1)])[:, None]
    proj = x @ comps.T
    if proj.shape[1] < 3:
        proj = np.pad(proj, ((0, 0), (0, 3 - proj.shape[1])))
    lo, hi = proj.min(0), proj.max(0)
    rgb = (proj - lo) / np.where(hi > lo, hi - lo, 1.)
    return rgb.reshape(*grid, 3)


def heat_overlay(image_rgb: np.ndarray, grid_map: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """A (h, w) map, min-max scaled, as an ``inferno`` heat map blended over the image."""
    from matplotlib import colormaps
    from PIL import Image
    m = grid_map.astype(np.float64)
    m = (m - m.min()) / (m.max() - m.min() if m.max() > m.min() else 1.)
    size = (image_rgb.shape[1], image_rgb.shape[0])
    m = np.asarray(Image.fromarray((m * 255).astype(np.uint8)).resize(size, Image.BILINEAR))
    heat = colormaps['inferno'](m / 255.)[..., :3] * 255
    return (alpha * heat + (1 - alpha) * image_rgb).clip(0, 255).astype(np.uint8)


def visualize(model, image_path: str, out_dir: str, attn_blocks: Sequence[int] = (-1, ),
              pca_block: int = -1, size: Optional[Tuple[int, int]] = None) -> Dict[str, str]:
    """Write the PNGs (and the ``.npz`` of grid maps) for one image; returns their paths."""
    import mmcv
    from PIL import Image
    from projects.eva.apis.build import vit_of
    vit = vit_of(model)
    if vit.num_frames:
        raise ValueError(f'{type(model).__name__} has a video backbone (num_frames='
                         f'{vit.num_frames}: its position table covers clips of '
                         f'{vit.num_frames} frames); this tool draws maps of single images: '
                         'use an image model (classification, CLIP, detection, segmentation)')
    image = mmcv.imread(image_path)  # BGR, as the OpenMMLab pipelines load it
    if image is None:
        raise FileNotFoundError(f'cannot read image {image_path}')
    size = tuple(size) if size else tuple(vit.img_size)
    from projects.eva.apis.build import size_divisor
    mult = size_divisor(model)
    if size[0] % mult or size[1] % mult:
        raise ValueError(f'--size {size[0]} {size[1]}: sides must be multiples of {mult}')
    x = preprocess(model, image, size)
    feats, attn, grid = extract(model, x, attn_blocks, pca_block)
    rgb = image[..., ::-1].copy()
    h, w = rgb.shape[:2]
    os.makedirs(out_dir, exist_ok=True)
    stem = osp.splitext(osp.basename(image_path))[0]
    pca = pca_rgb(feats.numpy(), grid)
    out = {'pca': osp.join(out_dir, f'{stem}_pca.png')}
    Image.fromarray((pca * 255).round().astype(np.uint8)).resize((w, h), Image.NEAREST) \
        .save(out['pca'])
    arrays = {'pca': pca.astype(np.float32)}
    for i, rows in attn.items():
        maps = rows.reshape(-1, *grid).numpy()
        arrays[f'attn_block{i}'] = maps.astype(np.float32)
        out[f'attn_block{i}'] = osp.join(out_dir, f'{stem}_attn_block{i}.png')
        Image.fromarray(heat_overlay(rgb, maps.mean(0))).save(out[f'attn_block{i}'])
    out['npz'] = osp.join(out_dir, f'{stem}_maps.npz')
    np.savez(out['npz'], **arrays)
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='PCA and cls-attention maps of EVA features')
    p.add_argument('config')
    p.add_argument('checkpoint', help='weights; "none" keeps the random init (smoke tests)')
    p.add_argument('images', nargs='+')
    p.add_argument('--out-dir', default='work_dirs/feature_maps')
    p.add_argument('--blocks', type=int, nargs='*', default=[-1],
                   help='blocks whose cls attention is drawn (negative from the end; '
                        'none for backbones without a cls token)')
    p.add_argument('--pca-block', type=int, default=-1, help='block whose patch tokens PCA uses')
    p.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'),
                   help='model input size (default: the backbone img_size)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from projects.eva import compat
    from projects.eva.apis.build import build_model
    compat.apply()
    ckpt = None if args.checkpoint.lower() == 'none' else args.checkpoint
    model = build_model(args.config, ckpt)
    for path in args.images:
        for name, f in visualize(model, path, args.out_dir, args.blocks, args.pca_block,
                                 args.size).items():
            print(f'{name}: {f}')


if __name__ == '__main__':
    main()
