"""Measurement code behind ``tools/analysis_tools``: FLOP counts, memory estimates, timing
utilities and result tables. The peer benchmarks (timm, mmpretrain) are harnesses in
``tools/analysis_tools``, not part of this package."""
