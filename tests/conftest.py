import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
torch.set_num_threads(2)

from projects.eva import compat  # noqa: E402

compat.apply()  # what tools/*.py and the runner apply


def _memoize_external_config_lookup():
    """mmengine resolves every ``mmdet::`` / ``mmpretrain::`` base of a config by reloading
    ``pkg_resources`` and reading all of the package's metafiles (~80 YAML files), ~0.4 s per
    reference, a quarter of the fast tier's time; the installed packages do not change during
    a session, so each (package, name) is looked up through mmengine once and its answer (a
    path or the ValueError that sends mmengine to the ``_base_`` folder) reused."""
    import functools

    import mmengine.config.config as config_module
    import mmengine.config.utils as config_utils
    lookup = config_utils._get_cfg_metainfo

    @functools.lru_cache(maxsize=None)
    def answer(package_path, cfg_path):
        try:
            return lookup(package_path, cfg_path), None
        except ValueError as e:
            return None, str(e)

    def cached_lookup(package_path, cfg_path):
        found, error = answer(package_path, cfg_path)
        if error is not None:
            raise ValueError(error)
        return found
    config_utils._get_cfg_metainfo = cached_lookup
    config_module.is_installed = functools.lru_cache(maxsize=None)(config_module.is_installed)


_memoize_external_config_lookup()


def _memoize_config_formatting():
    """mmengine formats a config's text with yapf each time it is shown, and a Runner shows
    the same text several times (its log, the work dir's copy, the visualizer's, every
    checkpoint's meta): ~0.5-1 s per call for the demo configs, a sixth of the fast tier.
    yapf gives the same text for the same input, so each distinct text is formatted once."""
    import functools

    import mmengine.config.config as config_module
    format_code = config_module.FormatCode

    @functools.lru_cache(maxsize=256)
    def format_text(text, style):
        return format_code(text, style_config=dict(style))

    def format_once(unformatted_source, style_config=None, **kwargs):
        if kwargs or not isinstance(style_config, dict):
            return format_code(unformatted_source, style_config=style_config, **kwargs)
        return format_text(unformatted_source, tuple(sorted(style_config.items())))
    config_module.FormatCode = format_once


_memoize_config_formatting()


@pytest.fixture
def tiny_arch():
    return dict(embed_dims=48, num_layers=4, num_heads=3, feedforward_channels=131)


@pytest.fixture
def one_thread():
    """Small ops on 2 shared cores: a second OpenMP thread mostly waits for a busy core
    (measured ~10x slower), so heavy tests run single-threaded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _subclasses(cls):
    """``cls`` and every subclass imported so far (each keeps its own instance dict)."""
    found = [cls]
    for sub in cls.__subclasses__():
        found += _subclasses(sub)
    return found


def _scopes_and_threads():
    """A Runner leaves its package's default scope (mmdet, mmaction...) behind globally, and
    later registry builds resolve in it; a tool run in-process may leave torch at one thread,
    which changes summation order (a learning test's trajectory with it); a config with
    ``randomness.deterministic`` (the demo's) turns torch's deterministic mode on for the
    process. Visualizers are named singletons too: the configs' ``name='visualizer'`` makes a
    later Runner reuse the instance an earlier test built, writing its ``vis_data`` scalars
    into that test's work dir. All four are restored."""
    from mmengine.registry import DefaultScope
    from mmengine.visualization import Visualizer
    saved = {m: dict(m._instance_dict) for m in [DefaultScope, *_subclasses(Visualizer)]}
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    yield
    # classes first imported during the test count too (they start with no instances)
    for manager in [DefaultScope, *_subclasses(Visualizer)]:
        manager._instance_dict.clear()
        manager._instance_dict.update(saved.get(manager, {}))
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


# per test, and per module for what module-scoped fixtures (a model built once) leave behind
_isolate_default_scope = pytest.fixture(autouse=True)(_scopes_and_threads)
_isolate_module_scope = pytest.fixture(autouse=True, scope='module')(_scopes_and_threads)


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'slow: trains with a Runner or starts fresh Python processes (seconds to '
        'minutes on CPU); CI runs them, the inner loop (-m "not slow") does not')


def pytest_collection_finish(session):
    """The collected modules (torch, the OpenMMLab stack, every test module) are ~600k
    objects that live for the session; each full garbage collection -- Python's own, or a
    tool's ``gc.collect()`` such as gpu_check's between cases (~0.3 s each) -- walked them all.
    Frozen, a collection walks only what the tests create (tests/detection, engine, apis and
    deployment: 97.7 s -> 85.6 s)."""
    import gc
    gc.collect()
    gc.freeze()
