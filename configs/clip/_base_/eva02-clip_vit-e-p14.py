# EVA-02-CLIP-E/14 (EVA02_CLIP_E_psz14_s4B.pt, 4,704,589,569 params; rei EVA02-CLIP-bigE-14):
# image tower EVA-02-E (1792 wide, 64 residual post-norm blocks, fused qkv + q/v bias, GELU
# MLP 15360, no RoPE), patch 14 at 224, head(norm(x)[:, 0]) 1792 -> 1024; text tower LAION
# CLIP-H (width 1024, 24 layers, 16 heads, nn.GELU, causal, EOT pooling, 1024 -> 1024).
# Variables only: a zero-shot config combines them with the EVA-01 config of its data set.
# The file has EVA-01's tensor layout and is detected as eva-clip (same mapping):
#   python tools/model_converters/eva_to_mm.py EVA02_CLIP_E_psz14_s4B.pt checkpoints/eva02/EVA02_CLIP_E_psz14_s4B_mm.pth
eva02_clip_towers = dict(
    vision_backbone=dict(type='EVAViT', arch='eva02-clip-enormous', img_size=224,
                         patch_size=14, out_type='cls_token', final_norm=True, norm_eps=1e-6),
    text_backbone=dict(type='EVACLIPTextTransformer', vocab_size=49408, context_length=77,
                       width=1024, layers=24, heads=16, embed_dim=1024, act='gelu'))
eva02_clip_checkpoint = 'checkpoints/eva02/EVA02_CLIP_E_psz14_s4B_mm.pth'
