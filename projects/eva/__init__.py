"""EVA-01 on OpenMMLab 2.x.

Importing ``projects.eva`` applies the fixes for the pinned stack (:mod:`projects.eva.compat`)
and makes checkpoint writes atomic (:func:`projects.eva.checkpoint.atomic_local_writes`); it
registers nothing. The task packages register their classes, under names of their own, into
the OpenMMLab registries when a config imports them (``custom_imports``): see
docs/architecture.md.
"""
from . import checkpoint, compat

compat.apply()
checkpoint.atomic_local_writes()
