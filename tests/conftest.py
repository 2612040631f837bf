import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
torch.set_num_threads(2)

import projects.eva  # noqa: E402,F401


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: trains a model through the Runner (minutes)')


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


@pytest.fixture(autouse=True)
def _isolate_default_scope():
    """A Runner leaves its package's default scope (mmdet, mmaction...) behind globally, and
    later registry builds resolve in it; each test starts from the scopes that existed
    before it."""
    from mmengine.registry import DefaultScope
    saved = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: trains with a Runner (seconds to minutes on CPU)')
