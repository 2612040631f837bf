"""What the EVA-02 dense-task tests share: the tiny B/L block layout and the weight jitter."""
import torch

# EVA-02 B/L block layout (naive SwiGLU, sub-LN, separate q/k/v, RoPE), tiny: head dim 16
TINY02 = dict(embed_dims=48, num_layers=4, num_heads=3, feedforward_channels=64,
              mlp_type='swiglu', sub_ln=True, rope=True)


def randomize(module, scale=0.2):
    """Every tensor off its init value (biases, norms, q/v bias, pos_embed), so no term of the
    computation can hide behind a zero or a one."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * scale)
