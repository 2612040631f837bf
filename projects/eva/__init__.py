"""EVA-01 on OpenMMLab 2.x.

Importing ``projects.eva`` applies the stack fixes in :mod:`projects.eva.compat`. Task code
lives in sub-packages that register into their OpenMMLab registries when imported
(configs list them in ``custom_imports``): ``projects.eva.models`` (backbone, mmpretrain),
``projects.eva.pretrain`` (MIM).
"""
from . import compat

compat.apply()
