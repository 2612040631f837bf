"""EVA-01 on OpenMMLab 2.x.

Importing ``projects.eva`` applies the stack fixes in :mod:`projects.eva.compat`. Task code
lives in sub-packages that register into their OpenMMLab registries when imported
(configs list them in ``custom_imports``): ``projects.eva.models`` (backbone, mmpretrain),
``projects.eva.pretrain`` (MIM).
``projects.eva.get_model(name)`` / ``list_models(pattern)`` build the released models of
``model-index.yml``; ``projects.eva.apis`` has inference for every task.
"""
from . import compat

compat.apply()


def get_model(name, checkpoint=None, **kwargs):
    """A released EVA model by name (see :func:`projects.eva.apis.model_index.get_model`)."""
    from .apis.model_index import get_model as _get_model
    return _get_model(name, checkpoint=checkpoint, **kwargs)


def list_models(pattern=None):
    """Names in model-index.yml, optionally filtered by a wildcard pattern."""
    from .apis.model_index import list_models as _list_models
    return _list_models(pattern)
