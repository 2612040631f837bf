"""User-facing entry points: inference for every task (``build_inferencer``,
``run_inference``, ``inference``) and the model index (``get_model``, ``list_models``).

Kept import-light: the OpenMMLab task packages are imported only when a task needs them.
"""
from .inference import (IMAGE_EXTS, TASKS, VIDEO_EXTS, build_inferencer, collect_inputs,
                        inference, run_inference, task_of)
from .model_index import get_model, get_model_info, list_models, load_index

__all__ = ['IMAGE_EXTS', 'TASKS', 'VIDEO_EXTS', 'build_inferencer', 'collect_inputs',
           'inference', 'run_inference', 'task_of', 'get_model', 'get_model_info',
           'list_models', 'load_index']
