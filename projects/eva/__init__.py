"""EVA-01 on OpenMMLab 2.x.

Importing ``projects.eva`` applies the fixes for the pinned stack (:mod:`projects.eva.compat`)
and makes checkpoint writes atomic (:func:`projects.eva.checkpoint.atomic_local_writes`); it
registers nothing. The task packages register their classes, under names of their own, into
the OpenMMLab registries when a config imports them (``custom_imports``): see
docs/architecture.md. ``projects.eva.get_model(name)`` / ``list_models(pattern)`` build the
released models of ``model-index.yml``; ``projects.eva.apis`` has inference for every task.
"""
from . import checkpoint, compat

compat.apply()
checkpoint.atomic_local_writes()


def get_model(name, checkpoint=None, pretrained=False, **kwargs):
    """A released EVA model by name, ``pretrained=True`` with its released weights (see
    :func:`projects.eva.apis.model_index.get_model`)."""
    from .apis.model_index import get_model as _get_model
    return _get_model(name, checkpoint=checkpoint, pretrained=pretrained, **kwargs)


def list_models(pattern=None):
    """Names in model-index.yml, optionally filtered by a wildcard pattern."""
    from .apis.model_index import list_models as _list_models
    return _list_models(pattern)
