"""The tiny models every test builds, of both generations, and the weight jitter.

Importable by name (tests/ is on sys.path): ``from eva02_tiny import TINY01, TINY02, ARCHS,
randomize``."""
import torch

# EVA-01 block layout (GELU MLP, fused qkv with q/v bias), tiny: head dim 16 (conftest's
# ``tiny_arch`` fixture)
TINY01 = dict(embed_dims=48, num_layers=4, num_heads=3, feedforward_channels=131)
# EVA-02 B/L block layout (naive SwiGLU, sub-LN, separate q/k/v, RoPE), tiny: head dim 16
TINY02 = dict(embed_dims=48, num_layers=4, num_heads=3, feedforward_channels=64,
              mlp_type='swiglu', sub_ln=True, rope=True)
# what a test parametrised over generations runs: ``@pytest.mark.parametrize('gen', ARCHS)``
ARCHS = {'eva01': TINY01, 'eva02': TINY02}


def randomize(module, scale=0.2, seed=1, only=None):
    """Every tensor off its init value (biases, norms, q/v bias, pos_embed), so no term of the
    computation can hide behind a zero or a one. ``seed=None`` draws from the current RNG
    state (a test that seeded once for several modules); ``only(name, tensor)`` picks the
    parameters (``biases_and_norms``: biases and norms only, the weights keeping their init scale)."""
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if only is None or only(name, p):
                p.add_(torch.randn_like(p) * scale)
    return module


def biases_and_norms(name, p):
    """The 1-D parameters: biases, norm weights, q/v bias."""
    return p.ndim == 1
