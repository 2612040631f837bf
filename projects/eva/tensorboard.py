"""TensorBoard scalars for any config: one more visualizer backend.

``tools/train.py CONFIG --tensorboard`` (and ``tools/test.py``) call :func:`enable_tensorboard`;
from Python, call it on a Config before building the Runner. mmengine's ``LoggerHook`` sends
every logged scalar (losses, learning rate, metrics) to all visualizer backends, so the event
files land beside ``scalars.json`` in ``<work_dir>/<timestamp>/vis_data/``:

    tensorboard --logdir work_dirs/<run>
"""
from mmengine.config import Config, ConfigDict

TENSORBOARD = 'TensorboardVisBackend'


def enable_tensorboard(cfg: Config) -> Config:
    """Add mmengine's ``TensorboardVisBackend`` to ``cfg.visualizer`` (creating a plain
    ``Visualizer`` with the local backend when the config has none). Idempotent."""
    try:
        import tensorboard  # noqa: F401  (torch's SummaryWriter needs it; fail here, clearly)
    except ImportError as e:
        raise ImportError('--tensorboard needs the tensorboard package '
                          '(pinned in requirements/runtime.txt)') from e
    vis = cfg.get('visualizer')
    if vis is None:
        vis = ConfigDict(type='mmengine.Visualizer',
                         vis_backends=[dict(type='LocalVisBackend')])
    backends = list(vis.get('vis_backends') or [dict(type='LocalVisBackend')])
    if not any(str(b.get('type', '')).split('.')[-1] == TENSORBOARD for b in backends):
        backends.append(dict(type=TENSORBOARD))
    vis['vis_backends'] = backends
    cfg.visualizer = vis
    if cfg.get('vis_backends') is not None:  # the top-level variable some configs keep
        cfg.vis_backends = backends
    return cfg
