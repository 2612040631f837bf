"""A short contrastive run of the demo's tiny EVA-CLIP must learn: the loss falls and zero-shot
classification of held-out rendered shapes from prompts alone beats chance clearly."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from PIL import Image

from projects.eva.demo.synthetic_clip import clip_classnames, make_caption_dataset

STEPS, BATCH, LR, WARMUP = 30, 32, 1.5e-3, 5
CONFIG = 'configs/demo/eva-clip_vit-tiny-p8_1xb64-6e_shapes-captions.py'


def _load(paths):
    # RGB -> BGR like LoadImageFromFile; the preprocessor flips back (to_rgb=True)
    return torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert('RGB'))[..., ::-1]
                                         .copy()).permute(2, 0, 1) for p in paths])


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('clip'))
    names = make_caption_dataset(root, num_train=720, num_test_per_class=5, size=40, seed=1)
    rows = [line.rstrip('\n').split('\t')
            for line in open(osp.join(root, 'train', 'captions.tsv'))][1:]
    train_x = _load([osp.join(root, 'train', r[0]) for r in rows])
    test_paths = sorted(glob.glob(osp.join(root, 'test', '*', '*.png')))
    test_y = torch.tensor([names.index(osp.basename(osp.dirname(p)).replace('_', ' '))
                           for p in test_paths])
    return train_x, [r[1] for r in rows], _load(test_paths), test_y


def test_generated_layout(data):
    train_x, captions, test_x, test_y = data
    assert train_x.shape == (720, 3, 40, 40) and test_x.shape == (90, 3, 40, 40)
    assert len(clip_classnames()) == 18 and clip_classnames()[0] == 'blue circle'
    assert test_y.bincount().tolist() == [5] * 18
    assert all(any(c in cap for c in ('circle', 'square', 'triangle')) for cap in captions)


@pytest.mark.slow
def test_contrastive_training_learns_zero_shot(data):
    train_x, captions, test_x, test_y = data
    torch.manual_seed(0)
    cfg = Config.fromfile(CONFIG)
    model = MODELS.build(cfg.model)
    model.init_weights()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.98), eps=1e-6,
                            weight_decay=0.05)
    gen = torch.Generator().manual_seed(0)
    losses = []
    model.train()
    for step in range(STEPS):
        idx = torch.randperm(len(captions), generator=gen)[:BATCH]
        samples = []
        for i in idx.tolist():
            ds = DataSample()
            ds.set_field(captions[i], 'text')
            samples.append(ds)
        batch = model.data_preprocessor(dict(inputs=list(train_x[idx]),
                                             data_samples=samples), True)
        for g in opt.param_groups:
            g["lr"] = LR * min(1.0, (step + 1) / WARMUP)
        loss = model(**batch, mode="loss")["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        batch = model.data_preprocessor(
            dict(inputs=list(test_x), data_samples=[DataSample() for _ in test_x]), False)
        pred = torch.stack([o.pred_label for o in model(**batch, mode='predict')]).flatten()
    top1 = (pred == test_y).float().mean().item()
    print(f"loss {np.mean(losses[:10]):.3f} -> {np.mean(losses[-10:]):.3f}, top1 {top1:.3f}")
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert first > 3.2 and last < first - 0.6, (first, last)  # ln(32) = 3.47 at the start
    assert top1 > 3 / 18, top1  # chance is 1/18
