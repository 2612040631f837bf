import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
torch.set_num_threads(2)

import projects.eva  # noqa: E402,F401


@pytest.fixture
def tiny_arch():
    return dict(embed_dims=48, num_layers=4, num_heads=3, feedforward_channels=131)


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
