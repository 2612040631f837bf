"""Demo stage 'eva02': EVA-02's recipe in small. A tiny EVA-02 (RoPE, SwiGLU, sub-LN) is
pretrained by MIM to regress the patch features of the EVA-CLIP the ``clip`` stage just
trained (EVA-02 regresses an EVA-CLIP's features, eva02_reference.md 4), then fine-tuned on
the digits with the EVA-01 classification stage's recipe; its top-1 is reported beside that
stage's."""
import os.path as osp
import time

from .utils import build_runner, config_path, latest_checkpoint, plot_curve, read_scalars

MIM_CONFIG = 'demo/eva02-mim_vit-tiny-p8_1xb32-16e_shapes.py'
CLS_CONFIG = 'demo/eva02-cls_vit-tiny-p8_1xb64-40e_digits.py'


def clip_teacher_checkpoint(work_dir: str) -> str:
    """The ``clip`` stage's checkpoint in ``work_dir``: the teacher, required."""
    ckpt = latest_checkpoint(osp.join(work_dir, 'clip'))
    if ckpt is None:
        raise FileNotFoundError(
            f'the eva02 stage pretrains with the CLIP stage\'s EVA-CLIP as its teacher, and '
            f'{osp.join(work_dir, "clip")} has no epoch_*.pth: run the clip stage first '
            f'(python tools/demo.py --stages clip,eva02)')
    return ckpt


def pretrain(work_dir: str, data_root: str, teacher: str, options: dict = None):
    """EVA-02 MIM with ``teacher`` (an EVACLIP checkpoint); returns (runner, minutes)."""
    from .pretrain import make_data
    root = make_data(data_root)
    opts = {'train_dataloader.dataset.dataset.data_root': root,
            'model.teacher.checkpoint': teacher, **(options or {})}
    t0 = time.time()
    runner = build_runner(config_path(MIM_CONFIG), osp.join(work_dir, 'eva02_mim'), opts)
    runner.train()
    return runner, (time.time() - t0) / 60


def finetune(work_dir: str, data_root: str, pretrained: str, options: dict = None):
    """Digits fine-tune from the MIM checkpoint ``pretrained``; returns (top-1, runner,
    minutes)."""
    from .classification import make_digits
    root = make_digits(data_root, 40)
    opts = {'train_dataloader.dataset.dataset.data_root': root,
            'val_dataloader.dataset.data_root': root,
            'test_dataloader.dataset.data_root': root,
            'model.backbone.init_cfg': dict(_delete_=True, type='Pretrained',
                                            checkpoint=pretrained, prefix='backbone.'),
            **(options or {})}
    t0 = time.time()
    runner = build_runner(config_path(CLS_CONFIG), osp.join(work_dir, 'eva02_cls'), opts)
    runner.train()
    top1 = float(runner.val_loop.run()['accuracy/top1'])
    return top1, runner, (time.time() - t0) / 60


def heldout_cosine(model, images_dir: str, teacher=None) -> float:
    """Mean cosine between the student's predictions of the masked patches and the
    teacher's features on held-out images (EVA-02's validation: the fixed mask of the even
    token indices); ``teacher`` defaults to the model's own. Images: ``images_dir/*/*.png``
    (the CLIP stage's test split, 40 px, never trained on by MIM)."""
    import glob

    import numpy as np
    import torch
    from PIL import Image
    files = sorted(glob.glob(osp.join(images_dir, '*', '*.png')))
    if not files:
        raise FileNotFoundError(f'no held-out images under {images_dir}/*/*.png')
    rgb = np.stack([np.asarray(Image.open(f).convert('RGB')) for f in files])
    pre = model.data_preprocessor  # CLIP mean / std (RGB), as in training
    x = (torch.from_numpy(rgb).permute(0, 3, 1, 2).float() - pre.mean) / pre.std
    teacher = model.teacher if teacher is None else teacher
    bb = model.backbone
    n = x.shape[-2] // bb.patch_size * (x.shape[-1] // bb.patch_size)
    mask = (torch.arange(n) % 2 == 0).expand(len(x), n)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            target = teacher(x)
            tokens = bb.forward_features(x, mask)[:, bb.num_extra_tokens:]
            return -float(model.head.loss(tokens, target, mask))
    finally:
        model.train(was_training)


def run_demo_stage(work_dir: str, data_root: str) -> list:
    from .clip import make_data as clip_data
    from .synthetic import digits_split
    teacher = clip_teacher_checkpoint(work_dir)
    heldout_images = osp.join(clip_data(data_root), 'test')  # never seen by MIM
    mim, mim_min = pretrain(work_dir, data_root, teacher)
    out = osp.join(work_dir, 'eva02_mim')
    records = [r for r in read_scalars(out) if 'loss' in r]
    steps, losses = [r['step'] for r in records], [r['loss'] for r in records]
    plot_curve(steps, losses, osp.join(out, 'loss_curve.png'),
               'EVA-02 MIM demo: -cos to the demo EVA-CLIP\'s patch features')
    k = max(1, len(losses) // 8)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    heldout = heldout_cosine(mim.model, heldout_images)
    top1, cls, cls_min = finetune(work_dir, data_root, latest_checkpoint(out))
    return [
        ('EVA-02 MIM (tiny EVA-02: RoPE, SwiGLU, sub-LN; teacher: the CLIP stage\'s EVA-CLIP)',
         'masked-patch loss (-cos), first -> last 1/8 of logged iters',
         f'{first:.3f} -> {last:.3f}', f'{steps[-1]} iters, {mim_min:.1f} min'),
        ('EVA-02 MIM, held-out: the CLIP stage\'s 360 test images, fixed mask (even patches)',
         'cosine to the teacher\'s features of the masked patches', f'{heldout:.3f}',
         'seconds'),
        # the EVA-01 classification row of the same table has the same split and metric; the
        # stages may run in parallel lanes (tools/demo.py), so neither reads the other's run
        ('EVA-02 classification fine-tune on sklearn digits (from the EVA-02 MIM checkpoint)',
         f'val top-1 (%), {len(digits_split()[3])} held-out images (as the EVA-01 row)',
         f'{top1:.2f}', f'{cls.iter} iters, {cls_min:.1f} min'),
    ]
