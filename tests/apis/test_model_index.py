"""model-index.yml + configs/<task>/metafile.yml: every entry builds, its numbers are the ones
the rest of the project uses, and the README's results table is generated from it."""
import json
import os.path as osp

import pytest

import projects.eva
from projects.eva.apis.model_index import (ROOT, get_model_info, load_index,
                                           readme_with_table, results_markdown)

MODELS = [m.name for m in load_index().values()]
# where the official files are: EVA-01 (BAAI/EVA), EVA-02-CLIP (QuanSun/EVA-CLIP), EVA-02
# det / seg (Yuxin-CV/EVA-02), detrex's DINO on EVA-02 (IDEA-CVR/DINO-EVA)
RELEASE_URLS = ('https://huggingface.co/BAAI/EVA/resolve/main/',
                'https://huggingface.co/QuanSun/EVA-CLIP/resolve/main/',
                'https://huggingface.co/Yuxin-CV/EVA-02/resolve/main/eva02/',
                'https://huggingface.co/IDEA-CVR/DINO-EVA/resolve/main/')


def test_index_is_openmmlab_format():
    """mmpretrain's own reader (the ``modelindex`` package) loads it with the same models."""
    from modelindex import load
    index = load(osp.join(ROOT, 'model-index.yml'))
    index.build_models_with_collections()
    assert sorted(m.name for m in index.models) == sorted(MODELS)
    tasks = {m.metafile.split('/')[1] for m in load_index().values()}
    assert tasks == {'pretrain', 'classification', 'detection', 'segmentation', 'video', 'clip'}
    assert len(MODELS) >= 30


def test_list_and_get_info():
    assert projects.eva.list_models('*coco*') == [n for n in MODELS if 'coco' in n]
    assert projects.eva.list_models('zeroshot-in1k')[0] == 'eva-clip_vit-g-p14_zeroshot-in1k'
    info = get_model_info('EVA-G-P14_IN21K-PRE_IN1K-336PX')  # case-insensitive, like mmpretrain
    assert info.weight_file == 'eva_21k_1k_336px_psz14_ema_89p6.pt'
    assert info.metric('Top 1 Accuracy') == 89.622
    assert info.converted_checkpoint == 'checkpoints/eva/eva_21k_1k_336px_psz14_ema_89p6_mm.pth'
    with pytest.raises(KeyError, match='unknown model'):
        get_model_info('eva-x-missing')
    with pytest.raises(KeyError, match='has no metric'):
        info.metric('box AP')


@pytest.mark.parametrize('name', MODELS)
def test_entry_builds_on_meta_with_its_parameter_count(name, tmp_path):
    info = get_model_info(name)
    if info.weights_url is None:  # a recipe with no released weights says so
        assert info.note.startswith('not released: ') and not info.converter and \
            not info.results, name
    else:
        assert info.weights_url.startswith(RELEASE_URLS)
    if info.converter:
        assert info.converter.startswith('python tools/model_converters/eva_to_mm.py ' +
                                         info.weight_file + ' ')
    else:
        assert info.note  # why there is no converter command
    kwargs, opts = {}, {}
    if info.metafile.startswith('configs/pretrain'):
        kwargs['teacher'] = dict(checkpoint=None, init_seed=0)  # CLIP weights absent here
    from mmengine.config import Config
    model_cfg = Config.fromfile(info.config).model.to_dict()
    if 'class_freq' in json.dumps(model_cfg, default=str):  # LVIS federated loss reads
        # per-class image counts at build time
        cat = tmp_path / 'cat_info.json'
        cat.write_text(json.dumps([dict(id=i + 1, image_count=i % 7 + 1) for i in range(1203)]))
        opts = {f'model.roi_head.bbox_head.{i}.loss_cls.class_freq': str(cat) for i in range(3)}
    for key in ('classnames', 'templates', 'test_cfg'):  # same weights, other label sets
        model_cfg.pop(key, None)
    key = json.dumps(model_cfg, sort_keys=True, default=str)
    if key not in _BUILT:  # entries that share a model (robustness, zero-shot sets) build once
        model = projects.eva.get_model(name, device='meta', cfg_options=opts, **kwargs)
        assert all(p.is_meta for p in model.parameters())
        _BUILT[key] = sum(p.numel() for p in model.parameters())
    assert _BUILT[key] == info.metadata['Parameters']


_BUILT = {}


def _indexed_configs():
    return {osp.relpath(m.config, ROOT) for m in load_index().values()}


# own-data templates: no released weights or numbers; docs/custom_data.md is their guide
UNINDEXED = ('configs/custom/',)


def test_every_config_has_an_index_entry():
    """Every config under configs/ (but the demos, _base_ files and own-data templates) is a
    model of the index: get_model / list_models know it, with its release or the reason it
    has none."""
    import glob
    configs = {osp.relpath(f, ROOT) for f in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                                                       recursive=True)}
    wanted = {c for c in configs if '/_base_/' not in c and not c.startswith('configs/demo/')
              and not c.startswith(UNINDEXED)}
    missing = sorted(wanted - _indexed_configs())
    assert not missing, f'{len(missing)} configs without a model-index entry: {missing}'
    families = {m.name.split('_')[0].split('-p')[0] for m in load_index().values()}
    assert {'eva02-ti', 'eva02-s', 'eva02-b', 'eva02-l', 'eva02-mim'} <= families


def test_paper_numbers_have_one_source():
    """results_table.py's and the zero-shot report's EVA-01 numbers are the metafiles'."""
    from projects.eva.analysis.results import PAPER
    from projects.eva.clip.zero_shot import PAPER_TOP1
    metafile_numbers = {float(v) for m in load_index().values() for r in m.results
                        for v in r['Metrics'].values()}
    assert {p.value for p in PAPER} <= metafile_numbers
    zs = {'imagenet-1k': 'in1k', 'imagenet-v2': 'in1k-v2', 'imagenet-a': 'in1k-a',
          'imagenet-r': 'in1k-r', 'imagenet-sketch': 'in1k-sketch', 'objectnet': 'objectnet',
          'ucf101': 'ucf101', 'kinetics400': 'k400', 'kinetics600': 'k600',
          'kinetics700': 'k700'}
    for bench, value in PAPER_TOP1.items():
        info = get_model_info(f'eva-clip_vit-g-p14_zeroshot-{zs[bench]}')
        assert info.metric('Top 1 Accuracy') == value, bench
    # the config headers quote the same numbers
    for name, text in (('eva-g-p14_in21k-pre_in1k-336px', '89.622 / 98.930'),):
        with open(get_model_info(name).config) as f:
            assert text in f.read()


def test_readme_table_is_generated_from_the_metafiles():
    with open(osp.join(ROOT, 'README.md')) as f:
        readme = f.read()
    table = results_markdown()
    assert readme_with_table(readme, table) == readme, \
        'README.md is stale: python tools/analysis_tools/model_index_table.py --write'
    for info in load_index().values():
        for r in info.results:
            for metric, value in r['Metrics'].items():
                assert f'`{info.name}` | {r["Dataset"]} |' in table
                assert f'{metric} {value:g}' in table
