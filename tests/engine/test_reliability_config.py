"""Config keys nothing reads and values that fail late are named when the Runner is built
(``--cfg-options`` typos, misspelt sections, mmengine 1.x names, config variables, interval 0,
non-numeric rates, a training set smaller than one batch)."""
import pytest

from projects.eva.runner import runner_config

CLS = 'configs/demo/eva-cls_vit-tiny-p14_1xb64-80e_digits.py'


@pytest.mark.parametrize('option, error, message', [
    # inside a section whose reader takes a fixed set of keys
    ('optim_wrapper.paramwise_cfg.layer_decay_rat', KeyError,
     r"optim_wrapper.paramwise_cfg has no key 'layer_decay_rat' .*did you mean "
     r"'layer_decay_rate'"),
    ('optim_wrapper.paramwise_cfg.no_decay_keyz', KeyError,
     r"paramwise_cfg has no key 'no_decay_keyz' .*did you mean 'no_decay_keys'"),
    ('env_cfg.cudnn_benchmrk', KeyError,
     r"env_cfg has no key 'cudnn_benchmrk' .*did you mean 'cudnn_benchmark'"),
    ('train_cfg.max_epoch', KeyError,
     r"train_cfg has no key 'max_epoch' .*did you mean 'max_epochs'"),
    ('model.backbone.drop_path', KeyError,
     r"model.backbone has no key 'drop_path' .*did you mean 'drop_path_rate'"),
    # a misspelt section, an mmengine 1.x name, a variable already used by the file
    ('train_config.max_epochs', KeyError,
     r"nothing reads the config key 'train_config' \(did you mean 'train_cfg'"),
    ('optimizer.lr', KeyError,
     r"nothing reads the config key 'optimizer' \(in this mmengine version it is "
     r"'optim_wrapper.optimizer'"),
    ('max_epochs', KeyError,
     r"'max_epochs' is a variable of .*already used when the config was read; overriding "
     r"it changes nothing: set train_cfg.max_epochs"),
    # values that failed late
    ('train_cfg.val_interval', ValueError,
     r'train_cfg.val_interval must be a positive integer, got 0'),
    ('default_hooks.checkpoint.interval', ValueError,
     r'default_hooks.checkpoint.interval must be a positive integer \(or -1.*got 0'),
    ('default_hooks.chekpoint.interval', KeyError,
     r"default_hooks.chekpoint has no type .*did you mean 'checkpoint'"),
])
def test_cfg_option_that_nothing_reads_is_named_with_the_closest_key(option, error, message):
    value = 0 if 'interval' in option else 3
    with pytest.raises(error, match=message):
        runner_config(CLS, {option: value})


def test_non_numeric_drop_path_rate_is_named():
    with pytest.raises(TypeError, match=r"model.backbone.drop_path_rate must be a number, "
                                        r"got 'abc' \(str\)"):
        runner_config(CLS, {'model.backbone.drop_path_rate': 'abc'})


def test_options_that_are_read_pass():
    cfg = runner_config(CLS, {
        'optim_wrapper.optimizer.lr': 0.1, 'optim_wrapper.paramwise_cfg.layer_decay_rate': 0.8,
        'default_hooks.checkpoint.max_keep_ckpts': 1, 'default_hooks.logger.interval': 5,
        'randomness.seed': 1, 'randomness.diff_rank_seed': True, 'env_cfg.cudnn_benchmark': True,
        'train_dataloader.batch_size': 2, 'train_dataloader.drop_last': True,
        'model.backbone.drop_path_rate': 0.2, 'train_cfg.max_epochs': 2,
        'train_cfg.val_interval': 1, 'load_from': 'x.pth', 'visualizer.name': 'v',
        'default_hooks.checkpoint.interval': -1, 'work_dir': 'w', 'auto_scale_lr.enable': True})
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.8
    assert cfg.train_cfg.max_epochs == 2


def test_typo_in_paramwise_cfg_of_a_config_file_is_named():
    """Not only --cfg-options: the layer-decay constructor reads four keys and names others."""
    import torch.nn as nn

    from projects.eva.engine import EVALayerDecayOptimWrapperConstructor
    with pytest.raises(KeyError, match=r"'layer_decay_rat': did you mean 'layer_decay_rate'"):
        EVALayerDecayOptimWrapperConstructor(
            dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)),
            dict(layer_decay_rat=0.65))
    assert nn  # the constructor itself builds nothing here


def _keys_mmengine_reads():
    """The top-level keys mmengine's Runner and FlexibleRunner read, from their source: the
    ``from_cfg`` arguments and every ``self.cfg.get`` (model wrapper, compile, sync_bn...)."""
    import inspect
    import re

    from mmengine.runner import FlexibleRunner, Runner
    keys = set()
    for cls in (Runner, FlexibleRunner):
        keys |= set(re.findall(r"cfg(?:\.get\(|\[)'(\w+)'", inspect.getsource(cls.from_cfg)))
        keys |= set(re.findall(r"self\.cfg\.get\(\s*'(\w+)'", inspect.getsource(cls)))
    return keys


def test_every_key_mmengine_reads_is_a_known_top_level_key():
    from projects.eva.engine.config_check import TOP_LEVEL_KEYS
    keys = _keys_mmengine_reads()
    assert {'model', 'strategy', 'find_unused_parameters', 'sync_bn'} <= keys  # the scan works
    assert keys <= set(TOP_LEVEL_KEYS), sorted(keys - set(TOP_LEVEL_KEYS))


def _typo(key):
    return key[:-1] if key.endswith('s') else key + 's'


@pytest.mark.parametrize('key', sorted(_keys_mmengine_reads()))
def test_the_file_check_and_the_option_check_agree(key):
    """A key the Runner reads passes both the config-file check and ``--cfg-options``; a typo
    of it (one letter) is refused by both (two near-copies of the key list had drifted:
    ``find_unused_parameters`` passed as an option but its typo passed in a file)."""
    from mmengine.config import Config

    from projects.eva.engine.config_check import check_cfg_options, check_top_level_keys
    check_top_level_keys(Config({key: 1}), 'cfg.py')
    check_cfg_options(Config({}), {key: 1}, 'cfg.py')
    if len(key) >= 5:  # shorter ones are too far from any typo for the file check's 0.9 cutoff
        with pytest.raises(KeyError, match=rf"'{_typo(key)}'.*did you mean '{key}'"):
            check_top_level_keys(Config({_typo(key): 1}), 'cfg.py')
        with pytest.raises(KeyError, match=rf"nothing reads the config key '{_typo(key)}'"):
            check_cfg_options(Config({}), {_typo(key): 1}, 'cfg.py')


def test_the_tools_path_runs_the_same_checks(tmp_path):
    """runner_config (tools/train.py, test.py) uses the one list for the file and the options."""
    import os.path as osp
    cfg = runner_config(CLS, {'sync_bn': 'torch', 'find_unused_parameters': True})
    assert cfg.sync_bn == 'torch' and cfg.find_unused_parameters is True
    typo = tmp_path / 'typo.py'
    typo.write_text(f'_base_ = {osp.abspath(CLS)!r}\nfind_unused_parameter = True\n')
    with pytest.raises(KeyError, match="did you mean 'find_unused_parameters'"):
        runner_config(str(typo))
    # mmdet's / mmseg's default_runtime variable, already read into ``visualizer``
    runtime = tmp_path / 'runtime.py'
    runtime.write_text(f'_base_ = {osp.abspath(CLS)!r}\nvis_backends = []\n')
    with pytest.raises(KeyError, match="'vis_backends' is a variable of .*changes nothing"):
        runner_config(str(runtime), {'vis_backends': [dict(type='LocalVisBackend')]})
