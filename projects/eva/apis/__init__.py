"""User-facing entry points: the one door (``build_model``, ``load_config``, ``task_of``),
inference for every task (``build_inferencer``, ``run_inference``, ``inference``) and the
model index (``get_model``, ``list_models``).

Kept import-light: the OpenMMLab task packages are imported only when a task needs them.
"""
from .build import build_model, check_fit, load_config, size_divisor, task_of, vit_of
from .inference import (IMAGE_EXTS, TASKS, VIDEO_EXTS, build_inferencer, collect_inputs,
                        inference, run_inference)
from .model_index import get_model, get_model_info, list_models, load_index

__all__ = ['IMAGE_EXTS', 'TASKS', 'VIDEO_EXTS', 'build_inferencer', 'build_model',
           'check_fit', 'collect_inputs', 'inference', 'load_config', 'run_inference',
           'size_divisor', 'task_of', 'vit_of', 'get_model', 'get_model_info', 'list_models',
           'load_index']
