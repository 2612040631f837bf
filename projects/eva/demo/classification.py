"""Demo stage: fine-tune the MIM demo backbone on real handwritten digits; compare with a
logistic regression on raw pixels fitted in the same run."""
import os.path as osp
import time

from .utils import build_runner, config_path, ensure_data, latest_checkpoint


def make_digits(data_root: str, size: int) -> str:
    """``<data_root>/digits<size>/{train,val}/<digit>/``, drawn again when stale."""
    from . import synthetic
    root = osp.join(data_root, f'digits{size}')
    spec = dict(size=size, val_fraction=0.25, seed=0)
    ensure_data(root, spec, lambda: synthetic.make_digits_folders(root, **spec), [synthetic])
    return root


def logreg_baseline() -> float:
    """Val top-1 (%) of a logistic regression on the raw 8x8 pixels (the digits' split)."""
    from sklearn.linear_model import LogisticRegression

    from .synthetic import digits_split
    x_tr, y_tr, x_va, y_va = digits_split()
    logreg = LogisticRegression(max_iter=5000).fit(x_tr.reshape(len(x_tr), -1), y_tr)
    return 100.0 * logreg.score(x_va.reshape(len(x_va), -1), y_va)


def run_demo_stage(work_dir: str, data_root: str) -> list:
    from .synthetic import digits_split
    root = make_digits(data_root, 56)
    y_va = digits_split()[3]
    baseline = logreg_baseline()
    pretrained = latest_checkpoint(osp.join(work_dir, 'pretrain'))
    options = {'train_dataloader.dataset.dataset.data_root': root,
               'val_dataloader.dataset.data_root': root,
               'test_dataloader.dataset.data_root': root}
    if pretrained:
        options['model.backbone.init_cfg'] = dict(_delete_=True, type='Pretrained',
                                                  checkpoint=pretrained,
                                                  prefix='backbone.')
    out = osp.join(work_dir, 'classification')
    t0 = time.time()
    runner = build_runner(config_path('demo/eva-cls_vit-tiny-p14_1xb64-80e_digits.py'), out,
                          options)
    runner.train()
    metrics = runner.val_loop.run()
    top1 = float(metrics['accuracy/top1'])
    init = 'MIM demo checkpoint' if pretrained else 'random init (pretrain stage not run)'
    return [
        (f'classification fine-tune on sklearn digits (tiny EVA, from {init})',
         f'val top-1 (%), {len(y_va)} held-out images', f'{top1:.2f}',
         f'{runner.iter} iters, {(time.time() - t0) / 60:.1f} min'),
        ('baseline: logistic regression on raw 8x8 pixels (same split)',
         'val top-1 (%)', f'{baseline:.2f}', 'seconds'),
    ]
