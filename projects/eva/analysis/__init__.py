"""Measurement code behind ``tools/analysis_tools``: backbone benchmarks against timm and
mmpretrain, FLOP counts, training-memory estimates and result tables."""
