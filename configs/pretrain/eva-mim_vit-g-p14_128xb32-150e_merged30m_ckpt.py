# Low-memory variant of the ViT-g/14 MIM recipe for one 24 / 40 GB GPU per process: the same
# DDP + torch AMP run with per-block activation checkpointing. The base config needs about
# 39.5 GiB per GPU at batch 32 (above a 40 GB card once the CUDA context is added); this one
# about 16.6 GiB, for ~1/3 more student compute (one recomputed forward). EVA-01's own
# low-memory route, DeepSpeed ZeRO-1, is ..._deepspeed-zero1.py (28.3 GiB on 128 GPUs).
#   python tools/analysis_tools/estimate_memory.py THIS_CONFIG      (README "Memory per GPU")
_base_ = './eva-mim_vit-g-p14_128xb32-150e_merged30m.py'

model = dict(backbone=dict(with_cp=True))
