"""EVA-01 video: backbone video mode, head, pipelines, converters, K722 tool, configs."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

import projects.eva.video  # noqa: F401
from projects.eva.models.eva_vit import EVAViT

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
K400_CFG = osp.join(ROOT, 'configs/video/eva-g-p14_k722-pre_u16-1e_kinetics400-rgb.py')
K722_CFG = osp.join(ROOT, 'configs/video/eva-g-p14_eva-mim-pre_u8-40e_kinetics722-rgb.py')


def _video_model(arch, frames, num_classes=5, img=28, init_std=0.02, **cls_head):
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    model = MODELS.build(dict(
        type='Recognizer3D',
        backbone=dict(type='mmpretrain.EVAViT', arch=arch, img_size=img, patch_size=14,
                      num_frames=frames, out_type='avg_featmap', final_norm=False,
                      init_std=init_std),
        cls_head=dict(type='EVAVideoHead', num_classes=num_classes,
                      in_channels=arch['embed_dims'], average_clips='prob', **cls_head),
        data_preprocessor=dict(type='ActionDataPreprocessor', format_shape='NCTHW')))
    model.init_weights()
    return model


def test_one_frame_video_equals_image_model(tiny_arch):
    torch.manual_seed(0)
    image = EVAViT(tiny_arch, img_size=28, out_type='avg_featmap', final_norm=False)
    image.init_weights()
    video = EVAViT(tiny_arch, img_size=28, num_frames=1, out_type='avg_featmap',
                   final_norm=False)
    video.load_state_dict(image.state_dict(), strict=True)  # (1, 1+4, C) fits as is
    x = torch.randn(2, 3, 28, 28)
    torch.testing.assert_close(video(x[:, :, None])[0], image(x)[0])


def test_eva02_video_rotates_each_frame_as_its_image(tiny_arch):
    """EVA-02 (RoPE) in video mode: a clip of T copies of one picture, through the image
    model's weights with the table tiled over frames, gives every frame the image model's
    tokens (without a cls token, joint attention over T identical frames = attention over one:
    every key and value comes T times). Only a per-frame
    2-D rotation in frame-major token order does; a table repeated per token
    (repeat_interleave) or no rotation at all would not."""
    from eva02_tiny import TINY02, randomize
    kw = dict(img_size=28, rope_ref_size=2, with_cls_token=False)
    image = randomize(EVAViT(TINY02, **kw))
    video = EVAViT(TINY02, num_frames=3, **kw)
    video.load_state_dict(image.state_dict(), strict=True)  # pos table tiled over frames
    image.eval(), video.eval()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 28, 28)
    want = image.forward_features(x)  # (2, 4, C)
    got = video.forward_features(x[:, :, None].expand(-1, -1, 3, -1, -1).contiguous())
    for t in range(3):
        torch.testing.assert_close(got[:, 4 * t:4 * (t + 1)], want)
    # and the rotation matters here: without it the image tokens differ
    video.use_rope = False
    assert not torch.allclose(video.forward_features(x[:, :, None]), want, atol=1e-3)


def test_image_table_is_tiled_and_8_to_16_is_trilinear(tiny_arch):
    image = EVAViT(tiny_arch, img_size=28)
    pos = torch.randn_like(image.pos_embed)  # (1, 1 + 2*2, C)
    v8 = EVAViT(tiny_arch, img_size=28, num_frames=8)
    v8.load_state_dict({**image.state_dict(), 'pos_embed': pos}, strict=True)
    grid = v8.pos_embed[0, 1:].reshape(8, 4, -1)
    for t in range(8):  # every frame gets the image grid, cls slot kept
        torch.testing.assert_close(grid[t], pos[0, 1:])
    torch.testing.assert_close(v8.pos_embed[0, 0], pos[0, 0])
    # 8 -> 16 frames with a table linear in time: trilinear (align_corners=False) resizing
    # samples t_src = (t + 0.5) / 2 - 0.5, clamped to [0, 7]
    table = torch.zeros(1, 1 + 8 * 4, tiny_arch['embed_dims'])
    table[0, 1:] = torch.arange(8.).repeat_interleave(4)[:, None]
    v16 = EVAViT(tiny_arch, img_size=28, num_frames=16)
    v16.load_state_dict({**v8.state_dict(), 'pos_embed': table}, strict=True)
    got = v16.pos_embed[0, 1:, 0].reshape(16, 4)
    expect = ((torch.arange(16.) + 0.5) / 2 - 0.5).clamp(0, 7)
    torch.testing.assert_close(got, expect[:, None].expand(16, 4))


def test_head_maps_k722_rows_and_rejects_bad_mappings(tiny_arch, tmp_path):
    from projects.eva.video import EVAVideoHead
    src = EVAVideoHead(num_classes=7, in_channels=48)
    src.init_weights()
    mapping = np.array([5, 0, 3], dtype=np.int64)
    np.save(tmp_path / 'map.npy', mapping)
    dst = EVAVideoHead(num_classes=3, in_channels=48, class_mapping=str(tmp_path / 'map.npy'))
    dst.load_state_dict(src.state_dict(), strict=True)
    torch.testing.assert_close(dst.fc_cls.weight, src.fc_cls.weight[[5, 0, 3]])
    torch.testing.assert_close(dst.fc_cls.bias, src.fc_cls.bias[[5, 0, 3]])
    mask = np.zeros(7, bool)
    mask[[1, 2, 6]] = True  # boolean masks keep K722 order
    dst = EVAVideoHead(num_classes=3, in_channels=48, class_mapping=mask)
    dst.load_state_dict(src.state_dict())
    torch.testing.assert_close(dst.fc_cls.weight, src.fc_cls.weight[[1, 2, 6]])
    with pytest.raises(ValueError, match='selects 2 classes but the model has 3'):
        EVAVideoHead(num_classes=3, in_channels=48, class_mapping=[0, 1]).load_state_dict(
            src.state_dict())
    with pytest.raises(IndexError, match=r'\[0, 7\)'):
        EVAVideoHead(num_classes=3, in_channels=48, class_mapping=[0, 1, 7]).load_state_dict(
            src.state_dict())
    with pytest.raises(FileNotFoundError, match='build_k722'):
        EVAVideoHead(num_classes=3, in_channels=48,
                     class_mapping=str(tmp_path / 'none.npy')).load_state_dict(src.state_dict())
    head = EVAVideoHead(num_classes=3, in_channels=48)  # no mapping: dropped, init kept
    before = head.fc_cls.weight.clone()
    missing = head.load_state_dict(src.state_dict(), strict=False).missing_keys
    assert missing == ['fc_cls.weight', 'fc_cls.bias'] and torch.equal(head.fc_cls.weight, before)
    with pytest.raises(ValueError, match='avg_featmap'):
        head(torch.randn(2, 48, 3))
    # EVA-01 init: std 0.02 scaled by 0.001, zero bias
    assert 1.5e-5 < src.fc_cls.weight.std() < 2.5e-5 and not src.fc_cls.bias.any()


def test_recognizer_averages_softmax_over_views(tiny_arch):
    from mmaction.structures import ActionDataSample
    torch.manual_seed(0)
    model = _video_model(tiny_arch, frames=2, init_scale=1.0).eval()
    views = torch.randn(2, 6, 3, 2, 28, 28)  # 2 videos x (3 crops x 2 clips)
    samples = [ActionDataSample().set_gt_label(torch.tensor([i])) for i in range(2)]
    with torch.no_grad():
        preds = model(views, samples, mode='predict')
        logits = model.cls_head(model.backbone(views.flatten(0, 1)))
    expect = logits.softmax(-1).view(2, 6, -1).mean(1)
    for p, e in zip(preds, expect):
        torch.testing.assert_close(p.pred_score, e)


def test_short_training_fits_a_temporal_task(tiny_arch):
    """Clips whose two frames are (a, b) or (b, a): order is the only cue. The pos table
    (random per frame) lets the joint-attention model learn it. Width-48 blocks need a
    unit-scale init (std 0.2 truncated at 1 sigma ~ 1/sqrt(48)) to leave the near-identity,
    frame-order-blind start of EVA-01's 0.02 quickly."""
    from mmaction.structures import ActionDataSample
    torch.manual_seed(0)
    arch = dict(tiny_arch, num_layers=2)
    model = _video_model(arch, frames=2, num_classes=2, init_std=0.2, init_scale=1.0)
    a, b = torch.randn(8, 3, 1, 28, 28), torch.randn(8, 3, 1, 28, 28)
    x = torch.cat([torch.cat([a, b], 2), torch.cat([b, a], 2)])[:, None]
    y = [ActionDataSample().set_gt_label(torch.tensor([int(i >= 8)])) for i in range(16)]
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(60):
        loss = model(x, y, mode='loss')['loss_cls']
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0.6 and losses[-1] < 0.1, losses[::10]


@pytest.fixture(scope='module')
def short_video(tmp_path_factory):
    from projects.eva.apis.video_vis import write_mp4
    from projects.eva.demo.synthetic_video import moving_shape_frames
    root = tmp_path_factory.mktemp('videos')
    frames = moving_shape_frames(np.random.default_rng(0), 'right', size=64, frames=40)
    frames = np.stack([np.asarray(__import__('cv2').resize(f, (96, 72))) for f in frames])
    write_mp4(str(root / 'right.mp4'), frames, fps=8)
    return root


def test_k400_test_pipeline_gives_12_views_of_16_frames(short_video):
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    cfg = Config.fromfile(K400_CFG)
    pipeline = Compose(cfg.test_pipeline)
    out = pipeline(dict(filename=str(short_video / 'right.mp4'), label=3, start_index=0,
                        modality='RGB'))
    assert tuple(out['inputs'].shape) == (12, 3, 16, 224, 224)  # 3 crops x 4 clips
    assert out['data_samples'].gt_label.item() == 3
    # 4 clips of 16 frames, one per segment, clip k at offset (k + 1) / 5 of the segment
    inds = out['data_samples'].metainfo['frame_inds'] if 'frame_inds' in \
        out['data_samples'].metainfo else None
    assert inds is None or len(inds) == 64


def test_train_pipeline_runs_with_eva_augmentations(short_video):
    import random
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    random.seed(0)
    np.random.seed(0)
    pipeline = Compose(Config.fromfile(K722_CFG).train_pipeline)
    out = pipeline(dict(filename=str(short_video / 'right.mp4'), label=1, start_index=0,
                        modality='RGB'))
    assert tuple(out['inputs'].shape) == (1, 3, 8, 224, 224)


def test_grayscale_and_colour_jitter_transforms():
    from projects.eva.video.transforms import VideoColorJitter, VideoRandomGrayscale
    frames = [np.array([[[255, 0, 0], [0, 255, 0]]], np.uint8)] * 2
    out = VideoRandomGrayscale(prob=1.0)(dict(imgs=list(frames)))['imgs']
    assert [o[0, :, 0].tolist() for o in out] == [[76, 150]] * 2  # 0.299 / 0.587 * 255
    assert np.array_equal(out[0][..., 0], out[0][..., 2])
    same = VideoColorJitter(prob=0.0)(dict(imgs=list(frames)))['imgs']
    assert all(np.array_equal(a, b) for a, b in zip(same, frames))
    torch.manual_seed(0)
    clip = [np.random.default_rng(i).integers(0, 255, (8, 8, 3), dtype=np.uint8)
            for i in range(3)]
    jit = VideoColorJitter(prob=1.0, brightness=0.4, contrast=0, saturation=0, hue=0)
    out = jit(dict(imgs=[c.copy() for c in clip]))['imgs']
    ratio = [o.astype(float).sum() / c.astype(float).sum() for o, c in zip(out, clip)]
    assert max(ratio) - min(ratio) < 0.02  # one brightness factor for the whole clip
    with pytest.raises(ValueError, match='prob'):
        VideoRandomGrayscale(prob=2)


def _official_video_sd(arch, frames, classes):
    dim, g = arch['embed_dims'], 4
    sd = {'cls_token': torch.randn(1, 1, dim), 'pos_embed': torch.randn(1, 1 + frames * g, dim),
          'patch_embed.proj.weight': torch.randn(dim, 3, 1, 14, 14),
          'patch_embed.proj.bias': torch.randn(dim),
          'fc_norm.weight': torch.randn(dim), 'fc_norm.bias': torch.randn(dim),
          'head.weight': torch.randn(classes, dim), 'head.bias': torch.randn(classes)}
    hidden = arch['feedforward_channels']
    for i in range(arch['num_layers']):
        p = f'blocks.{i}.'
        sd.update({p + 'norm1.weight': torch.randn(dim), p + 'norm1.bias': torch.randn(dim),
                   p + 'attn.q_bias': torch.randn(dim), p + 'attn.v_bias': torch.randn(dim),
                   p + 'attn.qkv.weight': torch.randn(3 * dim, dim),
                   p + 'attn.proj.weight': torch.randn(dim, dim),
                   p + 'attn.proj.bias': torch.randn(dim),
                   p + 'norm2.weight': torch.randn(dim), p + 'norm2.bias': torch.randn(dim),
                   p + 'mlp.fc1.weight': torch.randn(hidden, dim),
                   p + 'mlp.fc1.bias': torch.randn(hidden),
                   p + 'mlp.fc2.weight': torch.randn(dim, hidden),
                   p + 'mlp.fc2.bias': torch.randn(dim)})
    return sd


def test_convert_official_video_checkpoint_round_trip(tiny_arch, tmp_path):
    from projects.eva.converters import convert_checkpoint
    sd = _official_video_sd(tiny_arch, frames=8, classes=7)
    path = tmp_path / 'eva_video_k722.pth'
    torch.save({'model': {k: v.half() for k, v in sd.items()}, 'epoch': 39,
                'max_accuracy': 84.9}, path)
    out = convert_checkpoint(str(path))
    assert out['meta']['source_format'].startswith('eva01-video')
    model = _video_model(tiny_arch, frames=8, num_classes=7)
    model.load_state_dict(out['state_dict'], strict=True)  # every tensor lands, none left
    got = model.state_dict()
    assert len(out['state_dict']) == len(sd)
    torch.testing.assert_close(got['backbone.patch_embed.proj.weight'],
                               sd['patch_embed.proj.weight'].half().float()[:, :, 0])
    torch.testing.assert_close(got['cls_head.fc_cls.weight'], sd['head.weight'].half().float())
    torch.testing.assert_close(got['backbone.blocks.3.attn.qkv.weight'],
                               sd['blocks.3.attn.qkv.weight'].half().float())
    # K722 checkpoint -> 16-frame K400-style model: pos resized, head rows mapped
    ft = _video_model(tiny_arch, frames=16, num_classes=3, class_mapping=[6, 2, 4])
    ft.load_state_dict(out['state_dict'], strict=True)
    torch.testing.assert_close(ft.cls_head.fc_cls.weight, sd['head.weight'].half().float()[[6, 2, 4]])
    assert ft.backbone.pos_embed.shape == (1, 1 + 16 * 4, tiny_arch['embed_dims'])
    # the converter can apply the mapping offline too
    mapped = convert_checkpoint(str(path), class_mapping=[6, 2, 4])['state_dict']
    assert mapped['cls_head.fc_cls.weight'].shape[0] == 3
    bad = dict(sd, **{'blocks.0.attn.relative_position_bias_table': torch.zeros(3)})
    torch.save(bad, tmp_path / 'bad.pth')
    with pytest.raises(ValueError, match='relative_position_bias_table is not part of an EVA-01'):
        convert_checkpoint(str(tmp_path / 'bad.pth'))  # not an EVA-01 video ViT: refused


def test_image_checkpoint_initialises_video_model(tiny_arch, tmp_path):
    from projects.eva.converters import convert_checkpoint
    sd = _official_video_sd(tiny_arch, frames=1, classes=3)
    sd['patch_embed.proj.weight'] = sd['patch_embed.proj.weight'][:, :, 0]
    for k in ('fc_norm.weight', 'fc_norm.bias', 'head.weight', 'head.bias'):
        sd.pop(k)
    dim = tiny_arch['embed_dims']
    sd.update({'mask_token': torch.randn(1, 1, dim), 'norm.weight': torch.randn(dim),
               'norm.bias': torch.randn(dim), 'lm_head.weight': torch.randn(16, dim),
               'lm_head.bias': torch.randn(16)})  # eva_psz14.pt layout (MIM)
    torch.save({'model': sd}, tmp_path / 'eva_psz14.pt')
    out = convert_checkpoint(str(tmp_path / 'eva_psz14.pt'), num_frames=8)
    assert out['meta']['source_format'].startswith('eva01-mim')
    model = _video_model(tiny_arch, frames=8)
    res = model.load_state_dict(out['state_dict'], strict=False)
    assert sorted(res.missing_keys) == ['backbone.fc_norm.bias', 'backbone.fc_norm.weight',
                                        'cls_head.fc_cls.bias', 'cls_head.fc_cls.weight']
    assert res.unexpected_keys == []
    grid = model.backbone.pos_embed[0, 1:].reshape(8, 4, dim)
    assert all(torch.equal(grid[t], sd['pos_embed'][0, 1:]) for t in range(8))
    with pytest.raises(ValueError, match='num_frames must be >= 1'):
        convert_checkpoint(str(tmp_path / 'eva_psz14.pt'), num_frames=0)


@pytest.mark.slow  # starts a fresh Python (imports the whole stack)
def test_build_k722_dedups_leaks_and_maps(tmp_path):
    def csv(folder, name, rows):
        os.makedirs(folder, exist_ok=True)
        with open(osp.join(folder, name), 'w') as f:
            f.write('label,youtube_id,time_start,time_end,split\n')
            f.writelines(f'"{lab}",{yid},{s},{s + 10},x\n' for lab, yid, s in rows)
    a = tmp_path / 'ann'
    csv(a / 'k400', 'train.csv', [('abseiling', 'A' * 11, 0), ('dying hair', 'B' * 11, 5),
                                  ('abseiling', 'A' * 11, 0)])
    csv(a / 'k400', 'validate.csv', [('dying hair', 'C' * 11, 1)])
    csv(a / 'k600', 'kinetics_train.csv', [('abseiling', 'A' * 11, 0),
                                           ('dyeing hair', 'D' * 11, 2),
                                           ('dyeing hair', 'E' * 11, 3)])
    csv(a / 'k600', 'kinetics_val.csv', [('dyeing hair', 'E' * 11, 3)])
    csv(a / 'k700', 'train.csv', [('zumba', 'F' * 11, 0), ('abseiling', 'C' * 11, 7)])
    csv(a / 'k700', 'validate.csv', [('zumba', 'G' * 11, 0)])
    out = tmp_path / 'k722'
    subprocess.run([sys.executable, osp.join(ROOT, 'tools/misc/build_k722.py'),
                    '--k400', str(a / 'k400'), '--k600', str(a / 'k600'),
                    '--k700', str(a / 'k700'), '--out', str(out)],
                   check=True, capture_output=True)
    read = lambda n: (out / n).read_text().splitlines()  # noqa: E731
    assert read('label_map_k722.txt') == ['abseiling', 'dyeing_hair', 'dying_hair', 'zumba']
    # duplicate A dropped, E (k600 val) and C (k400 val, leaked through k700) dropped
    assert read('kinetics722_train_list_videos.txt') == [
        f'kinetics400/videos_train/abseiling/{"A" * 11}_000000_000010.mp4 0',
        f'kinetics400/videos_train/dying_hair/{"B" * 11}_000005_000015.mp4 2',
        f'kinetics600/videos_train/dyeing_hair/{"D" * 11}_000002_000012.mp4 1',
        f'kinetics700/videos_train/zumba/{"F" * 11}_000000_000010.mp4 3']
    assert read('kinetics600_train_list_videos.txt') == [
        f'kinetics600/videos_train/abseiling/{"A" * 11}_000000_000010.mp4 0',
        f'kinetics600/videos_train/dyeing_hair/{"D" * 11}_000002_000012.mp4 1']
    assert len(read('kinetics722_val_list_videos.txt')) == 3
    assert np.load(out / 'k722_to_k400_mapping.npy').tolist() == [0, 2]
    assert np.load(out / 'k722_to_k600_mapping.npy').tolist() == [0, 1]
    assert np.load(out / 'k722_to_k700_mapping.npy').tolist() == [0, 3]


@pytest.mark.parametrize('cfg,params', [
    # EVA-01 logs: 1014.6865M (K722, 8 frames), 1017.1164M (K400), 1017.3982M, 1017.5391M
    ('eva-g-p14_eva-mim-pre_u8-40e_kinetics722-rgb.py', 1_014_686_546),
    ('eva-g-p14_k722-pre_u16-1e_kinetics400-rgb.py', 1_017_116_432),
    ('eva-g-p14_k722-pre_u16-2e_kinetics600-rgb.py', 1_017_398_232),
    ('eva-g-p14_k722-pre_u16-2e_kinetics700-rgb.py', 1_017_539_132),
])
def test_real_configs_build_eva01_video_models(cfg, params):
    from mmaction.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    c = Config.fromfile(osp.join(ROOT, 'configs/video', cfg))
    c.model.backbone.pop('init_cfg', None)
    blending = c.model.data_preprocessor.pop('blending', None)  # Beta() needs real tensors
    if 'kinetics722' in cfg:
        assert [(a.type, a.alpha) for a in blending.augments] == [('MixupBlending', 0.8),
                                                                   ('CutmixBlending', 1.0)]
        assert blending.probs == [0.5, 0.5] and c.model.cls_head.label_smooth_eps == 0.1
        assert c.param_scheduler[1].eta_min_ratio == 0.01 and c.train_cfg.max_epochs == 40
    else:
        assert blending is None and c.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.95
        assert c.optim_wrapper.optimizer.lr == 1e-6 and c.optim_wrapper.accumulative_counts == 4
    with torch.device('meta'):
        model = MODELS.build(c.model)
    assert sum(p.numel() for p in model.parameters()) == params
    assert model.backbone.with_cp and not model.backbone.freeze_patch_embed
    assert model.cls_head.average_clips == 'prob'
    assert c.optim_wrapper.optimizer.betas == (0.9, 0.98)
