"""EVA-01 / EVA-02 on OpenMMLab 2.x.

Importing ``projects.eva`` registers nothing and patches nothing. The fixes for the pinned
stack are applied explicitly by :func:`projects.eva.compat.apply` (``tools/*.py`` and the
runner call it). The task packages register their classes, under names of their own, into
the OpenMMLab registries when a config imports them (``custom_imports``): see
docs/architecture.md. Models come through one door, :func:`projects.eva.apis.build_model`
(a config or a model-index name, optionally a checkpoint read by the one safe loader,
:mod:`projects.eva.loader`); ``get_model(name)`` / ``list_models(pattern)`` build the
released models of ``model-index.yml``; ``projects.eva.apis`` has inference for every task.
"""


def get_model(name, checkpoint=None, pretrained=False, **kwargs):
    """A released EVA model by name, ``pretrained=True`` with its released weights (see
    :func:`projects.eva.apis.model_index.get_model`)."""
    from .apis.model_index import get_model as _get_model
    return _get_model(name, checkpoint=checkpoint, pretrained=pretrained, **kwargs)


def list_models(pattern=None):
    """Names in model-index.yml, optionally filtered by a wildcard pattern."""
    from .apis.model_index import list_models as _list_models
    return _list_models(pattern)
