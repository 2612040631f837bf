"""Shared by the segmentation tests: a short overfit of a tiny Mask2Former on drawn shapes,
judged by what it predicts (not only by its loss)."""
import numpy as np
import torch


def drawn_batch(model, num=8, size=64, seed=0):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    from projects.eva.demo.synthetic_segmentation import random_segmentation_sample
    rng = np.random.default_rng(seed)
    imgs, samples, labels = [], [], []
    for _ in range(num):
        img, label = random_segmentation_sample(rng, size)
        imgs.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float())
        labels.append(torch.from_numpy(label.astype(np.int64)))
        s = SegDataSample(gt_sem_seg=PixelData(data=labels[-1][None]))
        s.set_metainfo(dict(img_shape=(size, size), pad_shape=(size, size),
                            ori_shape=(size, size)))
        samples.append(s)
    data = model.data_preprocessor(dict(inputs=imgs, data_samples=samples), training=False)
    return data, torch.stack(labels)


def miou(model, data, labels) -> float:
    """Mean IoU over the classes present, from the model's own inference path."""
    model.eval()
    with torch.no_grad():
        pred = model.encode_decode(data['inputs'],
                                   [s.metainfo for s in data['data_samples']]).argmax(1)
    model.train()
    ious = [((pred == c) & (labels == c)).sum().item() / ((pred == c) | (labels == c)).sum().item()
            for c in labels.unique().tolist()]
    return float(np.mean(ious))


def overfit(model, steps=30, lr=1e-3):
    """AdamW on one batch of 8 drawn images; returns (losses, mIoU before, mIoU after)."""
    model.train()
    data, labels = drawn_batch(model)
    before = miou(model, data, labels)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    losses = []
    for _ in range(steps):
        loss = sum(v for k, v in model.loss(data['inputs'], data['data_samples']).items()
                   if 'loss' in k)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, before, miou(model, data, labels)
