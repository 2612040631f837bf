"""EVA-01 MIM: exact sizes, masking statistics, the loss, and the frozen teacher."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import projects.eva.pretrain  # noqa: F401
from projects.eva.models import CLIPVisionTower
from projects.eva.pretrain import EVAMaskGenerator, EVAMIMHead

TINY_TEACHER = dict(width=32, layers=1, heads=2, patch_size=14, image_size=56, output_dim=16)


def build_mim(arch, img_size=56, out_dim=16, teacher=None):
    teacher = teacher or CLIPVisionTower(arch=dict(TINY_TEACHER, output_dim=out_dim))
    return MODELS.build(dict(
        type='EVAMIM',
        backbone=dict(type='EVAViT', arch=arch, img_size=img_size, patch_size=14,
                      out_type='raw', final_norm=True, with_mask_token=True),
        head=dict(type='EVAMIMHead', in_channels=arch if isinstance(arch, str) else
                  arch['embed_dims'], out_channels=out_dim),
        teacher=teacher))


def test_giant_mim_trainable_parameter_count():
    teacher = CLIPVisionTower(arch=dict(TINY_TEACHER, image_size=224, output_dim=768))
    with torch.device('meta'):
        model = MODELS.build(dict(
            type='EVAMIM',
            backbone=dict(type='EVAViT', arch='giant', patch_size=14, out_type='raw',
                          final_norm=True, with_mask_token=True),
            head=dict(type='EVAMIMHead', in_channels=1408, out_channels=768),
            teacher=teacher))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 1_012_229_632
    # the teacher is not part of the model's parameters
    assert sum(p.numel() for p in model.parameters()) == trainable


def eva01_reference_mask_count(rng, height=16, width=16, num=105, min_patches=16,
                               min_aspect=0.3):
    """EVA-01 masking_generator.py, written from the spec: stop when a round adds nothing."""
    mask = np.zeros((height, width), dtype=int)
    log_ratio = (math.log(min_aspect), math.log(1 / min_aspect))
    count = 0
    while count < num:
        max_patches = num - count
        delta = 0
        for _ in range(10):
            # python's random.uniform: bounds may be reversed once few patches remain
            area = min_patches + (max_patches - min_patches) * rng.random()
            aspect = math.exp(rng.uniform(*log_ratio))
            h, w = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if w < width and h < height:
                top, left = rng.integers(0, height - h), rng.integers(0, width - w)
                num_masked = mask[top:top + h, left:left + w].sum()
                if 0 < h * w - num_masked <= max_patches:
                    new = (mask[top:top + h, left:left + w] == 0).sum()
                    mask[top:top + h, left:left + w] = 1
                    delta += new
            if delta > 0:
                break
        if delta == 0:
            break
        count += delta
    return count


def test_mask_statistics_match_eva01():
    np.random.seed(0)
    gen = EVAMaskGenerator(input_size=16, num_masking_patches=105, min_num_patches=16)
    counts = np.array([gen.transform({})['mask'].sum() for _ in range(1500)])
    ref = np.array([eva01_reference_mask_count(np.random.default_rng(i)) for i in range(1500)])
    assert counts.max() <= 105 and ref.max() <= 105
    assert gen.transform({})['mask'].shape == (16, 16)
    # EVA-01 stops early sometimes: mean below 105 (mmpretrain's generator always gives 105)
    assert counts.mean() < 104.9 and (counts < 105).mean() > 0.1
    assert abs(counts.mean() - ref.mean()) < 0.6, (counts.mean(), ref.mean())
    assert abs((counts == 105).mean() - (ref == 105).mean()) < 0.06


def test_loss_is_negative_cosine_over_masked_tokens():
    head = EVAMIMHead(in_channels=2, out_channels=2)
    with torch.no_grad():
        head.lm_head.weight.copy_(torch.eye(2))
        head.lm_head.bias.zero_()
    pred = torch.tensor([[[1., 0.], [1., 0.], [3., 3.], [1., 0.]]])
    target = torch.tensor([[[2., 0.], [0., 5.], [1., 0.], [-1., 0.]]])
    mask = torch.tensor([[True, True, True, False]])  # the last token (cos = -1) is ignored
    expected = -(1.0 + 0.0 + 1 / math.sqrt(2)) / 3
    assert head.loss(pred, target, mask).item() == pytest.approx(expected, abs=1e-6)
    # averaged over all masked tokens of the batch (EVA-01 flattens the batch first)
    pred2 = torch.cat([pred, pred[:, :1].expand(1, 4, 2)], 0)
    target2 = torch.cat([target, target[:, :1].expand(1, 4, 2)], 0)
    mask2 = torch.tensor([[True, True, True, False], [True, False, False, False]])
    expected2 = -(1.0 + 0.0 + 1 / math.sqrt(2) + 1.0) / 4
    assert head.loss(pred2, target2, mask2).item() == pytest.approx(expected2, abs=1e-6)


def _batch(n=2, size=56, grid=4, seed=0):
    torch.manual_seed(seed)
    samples = []
    for i in range(n):
        ds = DataSample()
        m = torch.zeros(grid, grid, dtype=torch.long)
        m[i % grid, :] = 1
        ds.set_mask(m)
        samples.append(ds)
    return [torch.randn(n, 3, size, size)], samples


def test_teacher_frozen_no_grad_not_saved(tiny_arch):
    model = build_mim(tiny_arch)
    model.init_weights()
    teacher = model.teacher
    assert all(not p.requires_grad for p in teacher.parameters())
    assert not any(k.startswith('teacher') for k in model.state_dict())
    assert not any(n.startswith('teacher') for n, _ in model.named_parameters())
    teacher_ids = {id(p) for p in teacher.parameters()}
    assert not teacher_ids & {id(p) for p in model.parameters()}
    model.train()
    assert not teacher.training
    inputs, samples = _batch()
    loss = model(inputs, samples, mode='loss')['loss']
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert model.backbone.mask_token.grad is not None and model.head.lm_head.weight.grad is not None
    # the teacher follows dtype/device moves of the model
    model.double()
    assert teacher.conv1.weight.dtype == torch.float64


def test_teacher_absent_from_saved_checkpoint(tmp_path, tiny_arch):
    from mmengine.runner.checkpoint import save_checkpoint
    model = build_mim(tiny_arch)
    path = str(tmp_path / 'ckpt.pth')
    save_checkpoint({'state_dict': model.state_dict()}, path)
    sd = torch.load(path, weights_only=True)['state_dict']
    assert not any('teacher' in k or 'conv1' in k for k in sd)
    fresh = build_mim(tiny_arch)
    fresh.load_state_dict(sd)  # strict: nothing missing without the teacher


def test_mim_targets_are_teacher_patch_tokens(tiny_arch):
    model = build_mim(tiny_arch)
    model.init_weights()
    img = torch.randn(2, 3, 56, 56)
    t = model.teacher
    with torch.no_grad():
        x = t.conv1(img).flatten(2).transpose(1, 2)
        x = torch.cat([t.class_embedding.expand(2, 1, -1), x], 1) + t.positional_embedding
        x = t.transformer(t.ln_pre(x))
        expected = t.ln_post(x[:, 1:]) @ t.proj  # all 16 patch tokens, cls dropped
    torch.testing.assert_close(t(img), expected)
    assert expected.shape == (2, 16, 16)


def test_grid_mismatch_is_reported(tiny_arch):
    teacher = CLIPVisionTower(arch=dict(TINY_TEACHER, patch_size=7))  # 8x8 tokens vs 4x4
    model = build_mim(tiny_arch, teacher=teacher)
    inputs, samples = _batch(size=56)
    with pytest.raises(ValueError, match='patch grids must match'):
        model(inputs, samples, mode='loss')


def test_clip_teacher_loads_openai_state_dict_and_torchscript(tmp_path):
    src = CLIPVisionTower(arch=TINY_TEACHER, init_seed=3)
    full = {f'visual.{k}': v for k, v in src.state_dict().items()}
    full['text_projection'] = torch.zeros(4, 4)  # text tower keys are ignored
    torch.save(full, tmp_path / 'openai_sd.pt')
    loaded = CLIPVisionTower(arch=TINY_TEACHER, checkpoint=str(tmp_path / 'openai_sd.pt'))
    img = torch.randn(1, 3, 56, 56)
    torch.testing.assert_close(loaded(img), src(img))

    class Wrapper(nn.Module):  # a TorchScript archive holding `visual.*` like OpenAI's .pt
        def __init__(self):
            super().__init__()
            self.visual = src

        def forward(self, x):
            return self.visual.conv1(x)

    torch.jit.save(torch.jit.trace(Wrapper(), img), str(tmp_path / 'ViT-tiny.pt'))
    ts = CLIPVisionTower(arch=TINY_TEACHER, checkpoint=str(tmp_path / 'ViT-tiny.pt'))
    torch.testing.assert_close(ts(img), src(img))
    torch.save({'foo': torch.zeros(1)}, tmp_path / 'bad.pt')
    with pytest.raises(KeyError, match='not an OpenAI/open_clip CLIP'):
        CLIPVisionTower(arch=TINY_TEACHER, checkpoint=str(tmp_path / 'bad.pt'))


def test_random_demo_teacher_depends_only_on_init_seed():
    """Processes with different global seeds (diff_rank_seed) must get the same teacher."""
    towers = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        towers.append(CLIPVisionTower(arch=TINY_TEACHER, init_seed=5).state_dict())
    for k, v in towers[0].items():
        torch.testing.assert_close(towers[1][k], v, rtol=0, atol=0, msg=k)
    other = CLIPVisionTower(arch=TINY_TEACHER, init_seed=6).state_dict()
    assert not torch.equal(other['proj'], towers[0]['proj'])
