"""The model index: every released EVA model by name, in OpenMMLab's format.

``model-index.yml`` (repository root) imports one ``metafile.yml`` per task
(``configs/<task>/metafile.yml``). Each model entry has the usual OpenMMLab fields --
``Name``, ``In Collection``, ``Config``, ``Metadata``, ``Results`` (the paper's numbers) --
plus ``Converted From.Weights`` (the official release URL), ``Converter`` (the command that
turns that file into a checkpoint for the config) and an optional ``Note``. Adding a model
(e.g. EVA-02) is adding an entry to a metafile: :func:`list_models`, :func:`get_model`, the
README's results table (:func:`results_markdown`) and tests/apis/test_model_index.py pick it up.
"""
import fnmatch
import os.path as osp
from functools import lru_cache
from typing import Dict, List, NamedTuple, Optional, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
INDEX_FILE = osp.join(ROOT, 'model-index.yml')
README_BEGIN = '<!-- results-table: generated from the metafiles by ' \
    'tools/analysis_tools/model_index_table.py; do not edit by hand -->'
README_END = '<!-- results-table end -->'


class ModelInfo(NamedTuple):
    name: str
    config: str                  # absolute path
    collection: Optional[str]
    results: Tuple[dict, ...]    # [{'Task', 'Dataset', 'Metrics': {name: value}}]
    weights_url: Optional[str]   # the official release
    converter: Optional[str]     # shell command: release file -> checkpoint for ``config``
    metadata: dict
    note: Optional[str]
    metafile: str                # relative to the repository root

    @property
    def weight_file(self) -> Optional[str]:
        """The official file name (``eva_21k_1k_336px_psz14_ema_89p6.pt``)."""
        return self.weights_url.rsplit('/', 1)[-1] if self.weights_url else None

    @property
    def converted_checkpoint(self) -> Optional[str]:
        """Where :attr:`converter` writes the checkpoint (its last argument)."""
        if not self.converter:
            return None
        words, args = self.converter.split(), []
        for prev, word in zip([''] + words, words):
            if not word.startswith('--') and not (prev.startswith('--') and prev != '--no-ema'
                                                  and '=' not in prev):
                args.append(word)  # a positional argument, not an option's value
        return args[-1] if args else None

    def metric(self, name: str, dataset: Optional[str] = None) -> float:
        """A paper metric by name (``'Top 1 Accuracy'``, ``'box AP'``, ``'mIoU'``...)."""
        for r in self.results:
            if dataset is not None and r.get('Dataset') != dataset:
                continue
            if name in (r.get('Metrics') or {}):
                return float(r['Metrics'][name])
        raise KeyError(f'{self.metafile}: model {self.name!r} has no metric {name!r}'
                       + (f' on {dataset}' if dataset else '')
                       + f'; it has {[list(r.get("Metrics", {})) for r in self.results]}')


def _read_yaml(path: str):
    import yaml
    if not osp.isfile(path):
        raise FileNotFoundError(f'model index file not found: {path}')
    with open(path) as f:
        return yaml.safe_load(f) or {}


@lru_cache()
def load_index(index_file: str = INDEX_FILE) -> Dict[str, ModelInfo]:
    """``{lower-case name: ModelInfo}`` of every model in the index, in file order."""
    root = osp.dirname(osp.abspath(index_file))
    index = _read_yaml(index_file)
    models: Dict[str, ModelInfo] = {}
    for rel in index.get('Import') or []:
        meta = _read_yaml(osp.join(root, rel))
        collections = {c['Name'] for c in meta.get('Collections') or []}
        for entry in meta.get('Models') or []:
            for key in ('Name', 'Config'):
                if not entry.get(key):
                    raise KeyError(f'{rel}: a model entry has no {key!r}: {entry}')
            name = entry['Name']
            if name.lower() in models:
                raise ValueError(f'{rel}: model name {name!r} is also defined in '
                                 f'{models[name.lower()].metafile}')
            coll = entry.get('In Collection')
            if coll is not None and coll not in collections:
                raise KeyError(f'{rel}: model {name!r} is in collection {coll!r}, which the '
                               f'file does not define (has {sorted(collections)})')
            config = entry['Config']
            config = config if osp.isabs(config) else osp.join(root, config)
            if not osp.isfile(config):
                raise FileNotFoundError(f'{rel}: config of model {name!r} not found: {config}')
            models[name.lower()] = ModelInfo(
                name=name, config=config, collection=coll,
                results=tuple(entry.get('Results') or ()),
                weights_url=(entry.get('Converted From') or {}).get('Weights'),
                converter=entry.get('Converter'), metadata=dict(entry.get('Metadata') or {}),
                note=entry.get('Note'), metafile=rel)
    return models


def list_models(pattern: Optional[str] = None) -> List[str]:
    """Model names, optionally filtered by a wildcard pattern (``'*coco*'``); a pattern
    without wildcards matches names containing it (as ``mmpretrain.list_models``)."""
    names = [m.name for m in load_index().values()]
    if pattern is None:
        return names
    if not any(c in pattern for c in '*?['):
        pattern = f'*{pattern}*'
    return [n for n in names if fnmatch.fnmatch(n.lower(), pattern.lower())]


def get_model_info(name: str) -> ModelInfo:
    models = load_index()
    info = models.get(name.lower())
    if info is None:
        close = list_models(name.split('_')[0]) or list(models)[:10]
        raise KeyError(f'unknown model {name!r}; see projects.eva.list_models() '
                       f'(e.g. {close[:8]})')
    return info


def get_model(name: str, checkpoint: Optional[str] = None, device: Optional[str] = None,
              cfg_options: Optional[dict] = None, pretrained=False, **kwargs):
    """Build a released EVA model by name (like ``mmpretrain.get_model``), through the one
    door (:func:`projects.eva.apis.build.build_model`).

    Args:
        name: a name from :func:`list_models`.
        checkpoint: a converted checkpoint (the entry's ``Converter`` command writes one from
            the official file); None builds the architecture without weights.
        pretrained: True downloads the official file (the metafile's URL) into the cache,
            converts it once and loads it (:func:`.hub.pretrained_checkpoint`); a local path
            or mirror URL of the official file does the same offline.
        device: ``'cpu'``, ``'cuda'``, or ``'meta'`` (no memory: shapes and parameter counts).
        cfg_options: dotted overrides of the config; ``**kwargs`` override ``model.*``.
    Returns:
        the model in eval mode, with ``.cfg`` (its config) and ``.dataset_meta``.
    """
    from .build import build_model
    info = get_model_info(name)  # an unknown name is named before anything is built
    if pretrained:
        if checkpoint:
            raise ValueError('give checkpoint= (a converted file) or pretrained=, not both')
        from .hub import pretrained_checkpoint
        checkpoint = pretrained_checkpoint(info, pretrained)
    return build_model(name, checkpoint=checkpoint, device=device, cfg_options=cfg_options,
                       **kwargs)


# ---------------------------------------------------------------------- README table
def _fmt(v) -> str:
    return f'{v:g}' if isinstance(v, (int, float)) else str(v)


def results_markdown(index_file: str = INDEX_FILE) -> str:
    """The README's results table: one row per (model, dataset) with the paper's metrics,
    the official weight file and the config."""
    lines = ['| task | model (`get_model` name) | dataset | EVA-01 (paper) | official weights |'
             ' config |', '|---|---|---|---|---|---|']
    for info in load_index(index_file).values():
        for r in info.results:
            metrics = ', '.join(f'{k} {_fmt(v)}' for k, v in (r.get('Metrics') or {}).items())
            weights = f'[`{info.weight_file}`]({info.weights_url})' if info.weights_url else '-'
            cfg = osp.relpath(info.config, osp.dirname(osp.abspath(index_file)))
            lines.append(f'| {r.get("Task", "")} | `{info.name}` | {r.get("Dataset", "")} | '
                         f'{metrics} | {weights} | `{cfg}` |')
    return '\n'.join(lines) + '\n'


def readme_with_table(readme: str, table: str) -> str:
    """``readme`` with the text between the table markers replaced by ``table``."""
    if README_BEGIN not in readme or README_END not in readme:
        raise ValueError('README has no results-table markers:\n' + README_BEGIN + '\n...\n'
                         + README_END)
    head, rest = readme.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    return head + README_BEGIN + '\n' + table + README_END + tail
