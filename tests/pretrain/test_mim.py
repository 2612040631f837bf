"""MIM (projects/eva/pretrain): EVA-01 (CLIP-L teacher: exact sizes, masking statistics, the
loss, the frozen teacher) and EVA-02 (the EVA-CLIP image-tower teacher with per-patch projected
targets, the student's patch-embedding gradient x0.1, the B/L recipes' official numbers); the
student is one EVAViT, tests that hold for both generations run on both tiny layouts."""
import math
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from eva02_tiny import ARCHS, TINY02
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import projects.eva.pretrain  # noqa: F401
from projects.eva.models import CLIPVisionTower, EVAViT
from projects.eva.pretrain import EVAMaskGenerator, EVAMIMHead

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
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


@pytest.mark.parametrize('gen', ARCHS)
def test_teacher_frozen_no_grad_not_saved(gen):
    model = build_mim(ARCHS[gen])
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


@pytest.mark.parametrize('gen', ARCHS)
def test_teacher_absent_from_saved_checkpoint(tmp_path, gen):
    from mmengine.runner.checkpoint import save_checkpoint
    model = build_mim(ARCHS[gen])
    path = str(tmp_path / 'ckpt.pth')
    save_checkpoint({'state_dict': model.state_dict()}, path)
    sd = torch.load(path, weights_only=True)['state_dict']
    assert not any('teacher' in k or 'conv1' in k for k in sd)
    fresh = build_mim(ARCHS[gen])
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


@pytest.mark.parametrize('gen', ARCHS)
def test_grid_mismatch_is_reported(gen):
    teacher = CLIPVisionTower(arch=dict(TINY_TEACHER, patch_size=7))  # 8x8 tokens vs 4x4
    model = build_mim(ARCHS[gen], teacher=teacher)
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


# ------------------------------------------------------------------ EVA-02
STUDENT = dict(TINY02, num_layers=2)
TOWER = dict(type='EVAViT', arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                      feedforward_channels=64),
             img_size=56, patch_size=14, out_type='raw', final_norm=True)


@pytest.mark.parametrize('gen', ARCHS)
def test_patch_embed_gradient_scale_keeps_the_forward(gen):
    torch.manual_seed(0)
    student = dict(ARCHS[gen], num_layers=2)
    a = EVAViT(student, img_size=56)
    a.init_weights()
    b = EVAViT(student, img_size=56, patch_embed_grad_scale=0.1)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 56, 56)
    ya, yb = a(x)[0], b(x)[0]
    torch.testing.assert_close(ya, yb)  # x.detach() * 0.9 + x * 0.1 = x up to rounding
    r = torch.randn_like(ya)  # (a plain sum of LayerNorm outputs has ~no gradient)
    (ya * r).sum().backward()
    (yb * r).sum().backward()
    ga = a.patch_embed.proj.weight.grad
    torch.testing.assert_close(b.patch_embed.proj.weight.grad, 0.1 * ga, rtol=1e-4,
                               atol=1e-4 * ga.abs().max().item())
    torch.testing.assert_close(b.pos_embed.grad, a.pos_embed.grad, rtol=1e-4, atol=1e-4)


def test_teacher_targets_are_projected_normed_patch_tokens(tmp_path):
    teacher = MODELS.build(dict(type='EVACLIPTeacher', vision_backbone=TOWER, embed_dim=16))
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        tokens = teacher.backbone.forward_features(x)
        want = tokens[:, 1:] @ teacher.clip_projection.weight.t() + teacher.clip_projection.bias
        got = teacher(x)
    assert got.shape == (2, 16, 16)
    torch.testing.assert_close(got, want)
    # an EVACLIP run checkpoint: text tower and logit_scale are ignored, the tower is strict
    sd = {f'backbone.{k}': v + 1 for k, v in teacher.backbone.state_dict().items()}
    sd.update({f'clip_projection.{k}': v for k, v in teacher.clip_projection.state_dict().items()})
    sd.update({'text.token_embedding.weight': torch.zeros(3, 4), 'logit_scale': torch.ones(())})
    torch.save({'state_dict': sd, 'meta': {}}, tmp_path / 'clip.pth')
    other = MODELS.build(dict(type='EVACLIPTeacher', vision_backbone=TOWER, embed_dim=16,
                              checkpoint=str(tmp_path / 'clip.pth'), init_seed=1))
    torch.testing.assert_close(other.backbone.pos_embed, teacher.backbone.pos_embed + 1)
    torch.save({'state_dict': {'text.x': torch.zeros(1)}}, tmp_path / 'text.pth')
    with pytest.raises(KeyError, match='no backbone'):
        MODELS.build(dict(type='EVACLIPTeacher', vision_backbone=TOWER, embed_dim=16,
                          checkpoint=str(tmp_path / 'text.pth')))
    with pytest.raises(ValueError, match='final_norm=True'):
        MODELS.build(dict(type='EVACLIPTeacher', vision_backbone=dict(TOWER, final_norm=False)))


def test_eva02_mim_loss_trains_the_student_only():
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='EVAMIM',
        backbone=dict(type='EVAViT', arch=STUDENT, img_size=56, patch_size=14, out_type='raw',
                      final_norm=True, with_mask_token=True, patch_embed_grad_scale=0.1),
        head=dict(type='EVAMIMHead', in_channels=48, out_channels=16),
        teacher=dict(type='EVACLIPTeacher', vision_backbone=TOWER, embed_dim=16)))
    model.init_weights()
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[:, 1:3, 1:3] = True
    samples = [DataSample() for _ in range(2)]
    for s, m in zip(samples, mask):
        s.mask = m
    img = torch.randn(2, 3, 56, 56)
    loss = model.loss(img, samples)['loss']
    with torch.no_grad():  # -cos of lm_head(normed masked student tokens) vs the teacher
        student = model.backbone.forward_features(img, mask)[:, 1:]
        pred = model.head.lm_head(student[mask.flatten(1)])
        target = model.teacher(img)[mask.flatten(1)]
    torch.testing.assert_close(loss, -F.cosine_similarity(pred, target, dim=-1).mean())
    loss.backward()
    assert model.backbone.mask_token.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())
    assert not any(k.startswith('teacher') for k in model.state_dict())


@pytest.mark.parametrize('name,arch,per_gpu,gpus,dpr', [
    ('eva02-mim_vit-b-p14_32xb64-150e_in21k.py', 'eva02-base', 64, 32, 0.0),
    ('eva02-mim_vit-l-p14_64xb32-150e_in21k.py', 'eva02-large', 32, 64, 0.1)])
def test_eva02_mim_recipes(name, arch, per_gpu, gpus, dpr):
    """eva02_reference.md 4: batch 2048, lr 1.5e-3, 150 epochs (1 warmup), Adam (0.9, 0.98)
    eps 1e-6, wd 0.05, clip 3.0, cosine to 1e-5, fp16 2^16 / 500, RRC (0.2, 1), 105 of 16x16
    masked, EVA-CLIP g/14 teacher -> 1024-d for every size, patch-embed gradient x0.1."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'pretrain', name))
    bb, head, opt = cfg.model.backbone, cfg.model.head, cfg.optim_wrapper
    assert (bb.arch, bb.img_size, bb.patch_size, bb.drop_path_rate) == (arch, 224, 14, dpr)
    assert bb.with_mask_token and bb.final_norm and bb.patch_embed_grad_scale == 0.1
    assert bb.init_type == 'eva02' and head.out_channels == 1024
    teacher = cfg.model.teacher
    assert teacher.type == 'EVACLIPTeacher' and teacher.embed_dim == 1024
    assert teacher.vision_backbone.arch == 'giant' and teacher.vision_backbone.final_norm
    assert cfg.train_dataloader.batch_size == per_gpu and per_gpu * gpus == 2048
    assert (opt.optimizer.lr, opt.optimizer.betas, opt.optimizer.eps,
            opt.optimizer.weight_decay) == (1.5e-3, (0.9, 0.98), 1e-6, 0.05)
    assert opt.clip_grad == dict(max_norm=3.0) and opt.dtype == 'float16'
    assert opt.loss_scale == dict(init_scale=2. ** 16, growth_interval=500)
    assert opt.paramwise_cfg.flat_decay_mult == 0. and 'layer_decay_rate' not in \
        opt.paramwise_cfg
    warm, cosine = cfg.param_scheduler
    assert (warm.end, cosine.end, cosine.eta_min, cfg.train_cfg.max_epochs) == (1, 150, 1e-5, 150)
    rrc, flip, mask = cfg.train_pipeline[1:4]
    assert rrc.crop_ratio_range == (0.2, 1.0) and rrc.scale == 224 and flip.prob == 0.5
    assert (mask.input_size, mask.num_masking_patches, mask.min_num_patches) == (16, 105, 16)
    assert cfg.data_preprocessor.mean == [0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255]
