"""Config and engine faults shared by every task: typos in config keys and hook arguments,
non-finite losses, non-numeric learning rates."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config

from projects.eva.engine.config_check import check_top_level_keys

def test_non_finite_loss_stops_with_iteration_and_terms():
    from types import SimpleNamespace

    from projects.eva.engine import FiniteLossHook
    hook = FiniteLossHook()
    runner = SimpleNamespace(iter=41, epoch=2, model=torch.nn.Linear(2, 2))
    hook.after_train_iter(runner, 0, outputs={'loss': torch.tensor(0.5)})
    with pytest.raises(FloatingPointError, match=r'iteration 42 \(epoch 3\).*loss_mask.*nan'):
        hook.after_train_iter(runner, 0, outputs={'loss': torch.tensor(float('nan')),
                                                  'loss_mask': torch.tensor(float('nan')),
                                                  'loss_cls': torch.tensor(0.3)})


def test_typo_in_top_level_config_key_is_reported():
    cfg = Config(dict(model=dict(type='x'), optim_wraper=dict(), img_size=224))
    with pytest.raises(KeyError, match="'optim_wraper'.*did you mean 'optim_wrapper'"):
        check_top_level_keys(cfg, 'cfg.py')
    check_top_level_keys(Config(dict(model=dict(), img_size=224, data_root='x',
                                     test_pipeline=[], val_pipeline=[])), 'ok.py')
    with pytest.raises(KeyError, match="did you mean 'param_scheduler'"):
        check_top_level_keys(Config(dict(param_schedulers=[])), 'cfg.py')




def _toy_runner(tmp_path, **options):
    from projects.eva.runner import build_runner
    from reliability_toy import toy_config
    return build_runner(toy_config(tmp_path / 'toy.py', max_iters=5, interval=1),
                        str(tmp_path / 'w'), cfg_options=options, no_validate=True)


@pytest.mark.parametrize('key, message', [
    # CheckpointHook takes **kwargs for Runner.save_checkpoint: the typo failed only at the
    # first save, after a whole epoch of training
    ('default_hooks.checkpoint.intervl',
     r"default_hooks.checkpoint: AtomicCheckpointHook: unknown argument\(s\) \['intervl'\] "
     r"\('intervl': did you mean 'interval'\?\)"),
    ('default_hooks.logger.intervall',
     r"default_hooks.logger \(LoggerHook\): unknown argument\(s\) \['intervall'\] "
     r"\('intervall': did you mean 'interval'\?\)"),
])
def test_typo_in_a_hook_argument_stops_when_the_runner_is_built(tmp_path, key, message):
    with pytest.raises(TypeError, match=message):
        _toy_runner(tmp_path, **{key: 1})
    _toy_runner(tmp_path, **{'default_hooks.checkpoint.interval': 1})


def test_non_numeric_learning_rate_in_the_layer_decay_constructor_is_named():
    """``--cfg-options optim_wrapper.optimizer.lr=3e-3x`` (or a list) failed inside our
    constructor with "can't multiply sequence by non-int of type 'float'"."""
    from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

    from projects.eva.models import EVAViT
    model = torch.nn.Module()
    model.backbone = EVAViT(dict(embed_dims=48, num_layers=2, num_heads=3,
                                 feedforward_channels=96), img_size=28, patch_size=14)

    def build(lr, rate=0.9):
        return OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
            type='EVALayerDecayOptimWrapperConstructor',
            optim_wrapper_cfg=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=lr)),
            paramwise_cfg=dict(layer_decay_rate=rate)))(model)

    with pytest.raises(TypeError, match=r"optim_wrapper.optimizer.lr must be a number, got "
                                        r"'3e-3x' \(str\)"):
        build('3e-3x')
    with pytest.raises(TypeError, match=r'layer_decay_rate must be a number, got \[0.9\]'):
        build(1e-3, rate=[0.9])
    groups = build(1e-3).optimizer.param_groups
    assert max(g['lr'] for g in groups) == pytest.approx(1e-3)
