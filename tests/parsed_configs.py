"""Every config parsed once per test session: ``Config.fromfile`` costs about half a second
(a recipe reads the OpenMMLab bases), and the configs tests read each of the ~140 configs
several times (parse-and-build, the snapshot, the recipe numbers). Callers get a deep copy,
which they may change. Importable by name (tests/ is on sys.path)."""
import copy
import functools
import os.path as osp

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@functools.lru_cache(maxsize=None)
def _parsed(name: str) -> Config:
    return Config.fromfile(osp.join(ROOT, 'configs', name))


def parsed_config(name: str) -> Config:
    """``Config.fromfile('configs/<name>')``, parsed at most once."""
    return copy.deepcopy(_parsed(name))
