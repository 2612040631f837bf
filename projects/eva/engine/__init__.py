"""Training-loop pieces shared by every task (registered in mmengine's root registries, so
every OpenMMLab package's configs find them)."""
from .hooks import FiniteLossHook, TorchRNGStateHook  # noqa: F401
from .checkpoint import AtomicCheckpointHook, CheckpointFitHook  # noqa: F401
from .lock import WorkDirLockHook  # noqa: F401
from .classes import DatasetClassesHook  # noqa: F401
from .loops import ResumableEpochBasedTrainLoop  # noqa: F401
from .layer_decay import EVALayerDecayOptimWrapperConstructor  # noqa: F401
from .reproducible import EpochSeededDataset, EpochSeededSampler  # noqa: F401
from .strategies import EVAFullyShardStrategy  # noqa: F401
