"""Training-loop pieces shared by every task (registered in mmengine's root registries)."""
from .reproducible import EpochSeededDataset, EpochSeededSampler  # noqa: F401
