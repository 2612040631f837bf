"""OpenAI-CLIP transformer towers with OpenAI's parameter names.

Used as EVA-01's frozen MIM teacher (the CLIP ViT-L/14 vision tower, whose *patch* tokens go
through ``ln_post`` and ``proj``) and as the EVA-CLIP text tower. Names match OpenAI's
``state_dict`` (``conv1``, ``transformer.resblocks.N.attn.in_proj_weight``...), so released
weights load without renaming.
"""
import io
import zipfile
from collections import OrderedDict
from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from ..loader import load_weights, unwrap_state_dict

CLIP_VISION_ARCHS = {
    # OpenAI CLIP ViT-L/14 @224: EVA-01's teacher (768-d targets).
    'L/14': dict(width=1024, layers=24, heads=16, patch_size=14, image_size=224, output_dim=768),
    'B/16': dict(width=768, layers=12, heads=12, patch_size=16, image_size=224, output_dim=512),
}


class QuickGELU(nn.Module):
    """OpenAI CLIP's activation x * sigmoid(1.702 x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class CLIPAttention(nn.Module):
    """``nn.MultiheadAttention``'s parameter layout (packed ``in_proj``), computed with SDPA."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).view(
            b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, c))


class CLIPResidualBlock(nn.Module):

    def __init__(self, width: int, heads: int, act: str = 'quick_gelu'):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = CLIPAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ('c_fc', nn.Linear(width, width * 4)),
            ('gelu', QuickGELU() if act == 'quick_gelu' else nn.GELU()),
            ('c_proj', nn.Linear(width * 4, width)),
        ]))

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), causal)
        return x + self.mlp(self.ln_2(x))


class CLIPTransformer(nn.Module):

    def __init__(self, width: int, layers: int, heads: int, act: str = 'quick_gelu'):
        super().__init__()
        self.resblocks = nn.ModuleList(
            [CLIPResidualBlock(width, heads, act) for _ in range(layers)])

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        for blk in self.resblocks:
            x = blk(x, causal)
        return x


@MODELS.register_module()
class CLIPVisionTower(nn.Module):
    """OpenAI CLIP ViT vision tower returning projected **patch** tokens (B, N, output_dim).

    EVA-01's teacher applies ``ln_post`` and ``proj`` to every token and drops the cls token.

    Args:
        arch: ``'L/14'``, ``'B/16'`` or a dict (width, layers, heads, patch_size, image_size,
            output_dim).
        checkpoint: OpenAI's TorchScript ``ViT-L-14.pt``, an OpenAI/open_clip state dict (full
            model with ``visual.*`` keys or the vision tower alone). ``None`` keeps a random
            init drawn from ``init_seed`` (only for the demo; it is not a pretrained CLIP).
        act: ``quick_gelu`` (OpenAI) or ``gelu``.
    """

    def __init__(self, arch: Union[str, dict] = 'L/14', checkpoint: Optional[str] = None,
                 act: str = 'quick_gelu', init_seed: int = 0):
        super().__init__()
        cfg = CLIP_VISION_ARCHS[arch] if isinstance(arch, str) else dict(arch)
        width, self.patch_size = cfg['width'], cfg['patch_size']
        self.image_size = cfg['image_size']
        grid = self.image_size // self.patch_size
        scale = width ** -0.5
        # every random value comes from ``init_seed`` (not the global RNG), so a random demo
        # teacher is the same in every process and every run
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.conv1 = nn.Conv2d(3, width, self.patch_size, self.patch_size, bias=False)
            self.class_embedding = nn.Parameter(scale * torch.randn(width))
            self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
            self.ln_pre = nn.LayerNorm(width)
            self.transformer = CLIPTransformer(width, cfg['layers'], cfg['heads'], act)
            self.ln_post = nn.LayerNorm(width)
            self.proj = nn.Parameter(scale * torch.randn(width, cfg['output_dim']))
            for m in self.modules():
                if isinstance(m, CLIPAttention):
                    nn.init.normal_(m.in_proj_weight, std=scale)
                    nn.init.normal_(m.out_proj.weight, std=scale)
                elif isinstance(m, (nn.Linear, nn.Conv2d)):
                    nn.init.normal_(m.weight, std=scale)
        if checkpoint is not None:
            self.load_state_dict(load_clip_visual_state_dict(checkpoint))

    @property
    def output_dim(self) -> int:
        return self.proj.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f'the CLIP teacher has a fixed {self.image_size}px position table; '
                             f'got input {tuple(x.shape[-2:])}')
        x = self.conv1(x.to(self.conv1.weight.dtype)).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 1:]) @ self.proj


def _read_clip_file(path: str) -> dict:
    """OpenAI's ``.pt`` releases are TorchScript archives (``torch.load`` refuses them)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            if any(n.split('/', 1)[-1].startswith('code/') for n in zf.namelist()):
                with open(path, 'rb') as f:
                    return torch.jit.load(io.BytesIO(f.read()), map_location='cpu').state_dict()
    return load_weights(path)


def load_clip_visual_state_dict(path: str) -> dict:
    """Vision-tower weights (fp32) from an OpenAI/open_clip CLIP file."""
    sd = unwrap_state_dict(_read_clip_file(path))
    if any(k.startswith('visual.') for k in sd):
        sd = {k[len('visual.'):]: v for k, v in sd.items() if k.startswith('visual.')}
    if 'conv1.weight' not in sd or 'proj' not in sd:
        raise KeyError(f'{path}: not an OpenAI/open_clip CLIP ViT checkpoint (no visual.conv1 / '
                       f'visual.proj); found keys like {sorted(sd)[:8]}')
    return {k: v.float() for k, v in sd.items()}
