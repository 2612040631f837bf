"""EVA-02 MIM: the EVA-CLIP image-tower teacher (per-patch projected targets), the student's
patch-embedding gradient x0.1, and the B/L recipes' official numbers."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import projects.eva.pretrain  # noqa: F401
from projects.eva.models import EVAViT

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STUDENT = dict(embed_dims=48, num_layers=2, num_heads=3, feedforward_channels=64,
               mlp_type='swiglu', sub_ln=True, rope=True)
TOWER = dict(type='EVAViT', arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                      feedforward_channels=64),
             img_size=56, patch_size=14, out_type='raw', final_norm=True)


def test_patch_embed_gradient_scale_keeps_the_forward():
    torch.manual_seed(0)
    a = EVAViT(STUDENT, img_size=56)
    a.init_weights()
    b = EVAViT(STUDENT, img_size=56, patch_embed_grad_scale=0.1)
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
