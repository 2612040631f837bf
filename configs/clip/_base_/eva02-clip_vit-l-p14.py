# EVA-02-CLIP-L/14 (EVA02_CLIP_L_psz14_s4B.pt, 427,755,457 params; rei EVA02-CLIP-L-14):
# image tower EVA-02-L with the CLIP inner_attn_ln (sub-LN SwiGLU, split q/k/v + q/v bias,
# 2-D RoPE), patch 14 at 224 (16 x 16 tokens), head(norm(x)[:, 0]) 1024 -> 768; text tower
# OpenAI CLIP-L (width 768, 12 layers, 12 heads, nn.GELU, causal, EOT pooling, projection
# 768 -> 768). Variables only: a zero-shot config combines them with the EVA-01 config of
# its data set (same data, classes and prompts). Convert the release first:
#   python tools/model_converters/eva_to_mm.py EVA02_CLIP_L_psz14_s4B.pt checkpoints/eva02/EVA02_CLIP_L_psz14_s4B_mm.pth
eva02_clip_towers = dict(
    vision_backbone=dict(type='EVAViT', arch='eva02-clip-large', img_size=224, patch_size=14,
                         out_type='cls_token', final_norm=True, norm_eps=1e-6),
    text_backbone=dict(type='EVACLIPTextTransformer', vocab_size=49408, context_length=77,
                       width=768, layers=12, heads=12, embed_dim=768, act='gelu'))
eva02_clip_checkpoint = 'checkpoints/eva02/EVA02_CLIP_L_psz14_s4B_mm.pth'
