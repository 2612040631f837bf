# EVA-02-CLIP-E/14+ (EVA02_CLIP_E_psz14_plus_s9B.pt, bf16, 5,044,889,089 params; rei
# EVA02-CLIP-bigE-14-plus): the E/14 image tower with the LAION CLIP-bigG text tower (width
# 1280, 32 layers, 20 heads, nn.GELU, projection 1280 -> 1024). Convert the release first:
#   python tools/model_converters/eva_to_mm.py EVA02_CLIP_E_psz14_plus_s9B.pt checkpoints/eva02/EVA02_CLIP_E_psz14_plus_s9B_mm.pth
_base_ = './eva02-clip_vit-e-p14.py'
eva02_clip_towers = dict(text_backbone=dict(width=1280, layers=32, heads=20))
eva02_clip_checkpoint = 'checkpoints/eva02/EVA02_CLIP_E_psz14_plus_s9B_mm.pth'
