"""Zero-shot prompts, class names and the paper's summary numbers.

The 80 OpenAI ImageNet templates and their 7-template subset come from open_clip
(``open_clip.zero_shot_metadata``, the same lists as mmpretrain's CLIP, whose module cannot be
imported without ``transformers``); the 18 OpenAI CIFAR templates are below. Class names are
mmpretrain's. ImageNet-A/-R use the 200-class subsets (timm ships their ImageNet indices);
ObjectNet uses the 113 classes it shares with ImageNet, named by its own ``mappings/``
(CLIP_benchmark's protocol); videos read their label files.
"""
import importlib.util
import json
import os.path as osp
import re
from functools import lru_cache
from typing import Callable, Dict, List, Optional, Sequence, Union

from mmpretrain.datasets.categories import (CIFAR10_CATEGORIES, CIFAR100_CATEGORIES,
                                            IMAGENET_SIMPLE_CATEGORIES)

Template = Union[str, Callable[[str], str]]

# OpenAI CLIP's 18 CIFAR-10/100 prompts (CLIP repository, data/prompts.md), in its order
OPENAI_CIFAR_TEMPLATES = tuple(
    f'a {quality}photo of {article} {size}{{}}.'
    for article in ('a', 'the')
    for quality, size in (('', ''), ('blurry ', ''), ('black and white ', ''),
                          ('low contrast ', ''), ('high contrast ', ''), ('bad ', ''),
                          ('good ', ''), ('', 'small '), ('', 'big ')))


def _package_file(package: str, *parts: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f'{package} is not installed; it ships {"/".join(parts)}')
    return osp.join(list(spec.submodule_search_locations)[0], *parts)


@lru_cache()
def _template_sets() -> dict:
    from open_clip.zero_shot_metadata import (OPENAI_IMAGENET_TEMPLATES,
                                              SIMPLE_IMAGENET_TEMPLATES)
    return dict(openai_imagenet=OPENAI_IMAGENET_TEMPLATES,
                openai_imagenet_sub=SIMPLE_IMAGENET_TEMPLATES,
                openai_cifar=tuple(t.format for t in OPENAI_CIFAR_TEMPLATES),
                vanilla=[lambda c: f'a photo of a {c}.'])


def get_templates(spec: Union[str, Sequence[Template]]) -> List[Callable[[str], str]]:
    """``'openai_imagenet'`` (80), ``'openai_imagenet_sub'`` (7), ``'openai_cifar'`` (18),
    ``'vanilla'``, or a list of ``'... {} ...'`` strings / callables."""
    if isinstance(spec, str):
        prompts = _template_sets()
        if spec not in prompts:
            raise KeyError(f'unknown template set {spec!r}; choose from {sorted(prompts)} or '
                           'pass a list of strings with "{}"')
        return list(prompts[spec])
    out = []
    for t in spec:
        if isinstance(t, str):
            if '{}' not in t:
                raise ValueError(f'template {t!r} has no "{{}}" for the class name')
            out.append(t.format)
        elif callable(t):
            out.append(t)
        else:
            raise TypeError(f'a template must be a string or a callable, got {type(t).__name__}')
    if not out:
        raise ValueError('no templates given')
    return out


@lru_cache()
def imagenet_subset_indices(name: str) -> List[int]:
    """ImageNet-1K indices of the 200 ImageNet-A / -R classes (sorted = sorted wnid folders)."""
    path = _package_file('timm', 'data', '_info', f'imagenet_{name}_indices.txt')
    with open(path) as f:
        idx = sorted(int(line) for line in f if line.strip())
    if len(idx) != 200:
        raise ValueError(f'{path}: expected 200 ImageNet-{name.upper()} classes, got {len(idx)}')
    return idx


def split_camel_case(name: str) -> str:
    """UCF-101 folder names -> words: ``ApplyEyeMakeup`` -> ``Apply Eye Makeup``."""
    return re.sub(r'(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])', ' ', name).strip()


def read_classnames_file(path: str, camel_case: bool = False) -> List[str]:
    """One class per line, in label order. ``'<int> <name>'`` lines (UCF-101 ``classInd.txt``,
    1-based) are ordered by the number; mmaction2 label maps are plain names."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'class-name file not found: {path}')
    with open(path) as f:
        lines = [line.strip() for line in f if line.strip()]
    numbered = [re.match(r'^(\d+)\s+(.+)$', line) for line in lines]
    if lines and all(numbered):
        lines = [m.group(2) for m in sorted(numbered, key=lambda m: int(m.group(1)))]
    names = [split_camel_case(n) if camel_case else n for n in lines]
    return [n.replace('_', ' ') for n in names]


def objectnet_classes(root: str) -> Dict[str, str]:
    """``{folder: lower-case ObjectNet name}`` for the 113 classes that map to ImageNet-1K,
    read from ``<root>/mappings/`` (``folder_to_objectnet_label.json`` and
    ``objectnet_to_imagenet_1k.json``); the dict is ordered by folder name = label order."""
    maps = osp.join(root, 'mappings')
    files = [osp.join(maps, n) for n in ('folder_to_objectnet_label.json',
                                         'objectnet_to_imagenet_1k.json')]
    for f in files:
        if not osp.isfile(f):
            raise FileNotFoundError(f'ObjectNet mapping file not found: {f} (expected the '
                                    'objectnet-1.0 layout: images/ and mappings/)')
    with open(files[0]) as f:
        folder_to_label = json.load(f)
    with open(files[1]) as f:
        overlap = set(json.load(f))
    kept = {folder: label.lower() for folder, label in folder_to_label.items()
            if label in overlap}
    return dict(sorted(kept.items()))


def get_classnames(spec: Union[str, Sequence[str], dict]) -> List[str]:
    """Class names in label order.

    ``spec``: a list; ``'imagenet'``, ``'imagenet-a'``, ``'imagenet-r'``, ``'cifar10'``,
    ``'cifar100'``; ``dict(file=path, camel_case=False)``; ``dict(objectnet=root)``.
    """
    if isinstance(spec, dict):
        if 'file' in spec:
            return read_classnames_file(spec['file'], spec.get('camel_case', False))
        if 'objectnet' in spec:
            return list(objectnet_classes(spec['objectnet']).values())
        raise KeyError(f'class-name dict needs "file" or "objectnet", got {sorted(spec)}')
    if isinstance(spec, str):
        key = spec.lower().replace('_', '-')
        if key in ('imagenet', 'imagenet-1k', 'imagenet-v2', 'imagenet-sketch'):
            return list(IMAGENET_SIMPLE_CATEGORIES)
        if key in ('imagenet-a', 'imagenet-r'):
            return [IMAGENET_SIMPLE_CATEGORIES[i] for i in imagenet_subset_indices(key[-1])]
        if key == 'cifar10':
            return list(CIFAR10_CATEGORIES)
        if key == 'cifar100':
            return [c.replace('_', ' ') for c in CIFAR100_CATEGORIES]
        raise KeyError(f'unknown class-name set {spec!r}: use imagenet, imagenet-a, '
                       'imagenet-r, cifar10, cifar100, a list, dict(file=...) or '
                       'dict(objectnet=...)')
    names = [str(n) for n in spec]
    if not names:
        raise ValueError('empty class-name list')
    return names


# ---------------------------------------------------------------------- paper summary
IMAGENET_FAMILY = ('imagenet-1k', 'imagenet-v2', 'imagenet-a', 'imagenet-r', 'imagenet-sketch',
                   'objectnet')
TWELVE = IMAGENET_FAMILY + ('cifar10', 'cifar100', 'ucf101', 'kinetics400', 'kinetics600',
                            'kinetics700')
# EVA-01 README (eva_clip_psz14.pt); CIFAR numbers are not in the README's EVA-01 rows.
PAPER_TOP1 = {'imagenet-1k': 78.53, 'imagenet-v2': 71.52, 'imagenet-a': 73.59,
              'imagenet-r': 92.5, 'imagenet-sketch': 67.31, 'objectnet': 72.33,
              'ucf101': 76.05, 'kinetics400': 65.23, 'kinetics600': 64.38, 'kinetics700': 58.4}


def summarize(top1: Dict[str, float]) -> Dict[str, Optional[float]]:
    """EVA's zero-shot summary: the ImageNet-family average, the robustness gap
    ``Δ = IN-1K − mean(IN-1K, V2, A, R, Sketch, ObjectNet)`` (lower is more robust) and the
    average over the 12 benchmarks; a value is ``None`` while one of its inputs is missing."""
    unknown = set(top1) - set(TWELVE)
    if unknown:
        raise KeyError(f'unknown benchmarks {sorted(unknown)}; expected names from {TWELVE}')

    def mean(keys):
        if not all(k in top1 for k in keys):
            return None
        return sum(top1[k] for k in keys) / len(keys)

    family = mean(IMAGENET_FAMILY)
    delta = None if family is None else top1['imagenet-1k'] - family
    return dict(imagenet_family_avg=family, robustness_delta=delta, avg_12=mean(TWELVE))
