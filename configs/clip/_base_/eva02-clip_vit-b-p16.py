# EVA-02-CLIP-B/16 (EVA02_CLIP_B_psz16_s8B.pt, 149,691,137 params; rei EVA02-CLIP-B-16):
# image tower EVA-02-B with the CLIP inner_attn_ln (sub-LN SwiGLU, split q/k/v + q/v bias,
# 2-D RoPE squeezed into the 16 x 16 pretraining grid), patch 16 at 224 (14 x 14 tokens),
# head(norm(x)[:, 0]) 768 -> 512; text tower OpenAI CLIP-B (width 512, 12 layers, 8 heads,
# nn.GELU, causal, EOT pooling, projection 512 -> 512). Variables only: a zero-shot config
# combines them with the EVA-01 config of its data set (same data, classes and prompts).
# Convert the release first:
#   python tools/model_converters/eva_to_mm.py EVA02_CLIP_B_psz16_s8B.pt checkpoints/eva02/EVA02_CLIP_B_psz16_s8B_mm.pth
eva02_clip_towers = dict(
    vision_backbone=dict(type='EVAViT', arch='eva02-clip-base', img_size=224, patch_size=16,
                         out_type='cls_token', final_norm=True, norm_eps=1e-6),
    text_backbone=dict(type='EVACLIPTextTransformer', vocab_size=49408, context_length=77,
                       width=512, layers=12, heads=8, embed_dim=512, act='gelu'))
eva02_clip_checkpoint = 'checkpoints/eva02/EVA02_CLIP_B_psz16_s8B_mm.pth'
