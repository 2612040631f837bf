"""EVA-CLIP: towers, loss, zero-shot, checkpoint conversion, datasets."""
import json
import math
import os
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from projects.eva.clip import zero_shot
from projects.eva.clip.model import EVACLIP, clip_contrastive_loss
from projects.eva.converters import convert_checkpoint, detect_format
from projects.eva.converters.clip import convert_eva_clip

GIANT = dict(dim=1408, depth=40, ff=6144, patch=14, grid=16, tw=768, tl=12, ctx=77,
             vocab=49408, embed=1024)
TINY = dict(dim=48, depth=2, ff=96, patch=14, grid=2, tw=32, tl=2, ctx=16, vocab=49408,
            embed=24)


def clip_cfg(s, **kw):
    return dict(
        type='EVACLIP',
        vision_backbone=dict(type='EVAViT', arch=dict(
            embed_dims=s['dim'], num_layers=s['depth'], num_heads=16 if s['dim'] > 100 else 3,
            feedforward_channels=s['ff']), img_size=s['grid'] * s['patch'],
            patch_size=s['patch'], out_type='cls_token', final_norm=True),
        text_backbone=dict(type='EVACLIPTextTransformer', vocab_size=s['vocab'],
                           context_length=s['ctx'], width=s['tw'], layers=s['tl'],
                           heads=12 if s['tw'] == 768 else 2, embed_dim=s['embed']),
        **kw)


def official_state_dict(s, device='cpu', dtype=torch.float16, seed=0):
    """``eva_clip_psz14.pt`` keys and shapes (reference doc section 4), random values."""
    g = torch.Generator().manual_seed(seed)
    shapes = {'visual.cls_token': (1, 1, s['dim']),
              'visual.pos_embed': (1, 1 + s['grid'] ** 2, s['dim']),
              'visual.patch_embed.proj.weight': (s['dim'], 3, s['patch'], s['patch']),
              'visual.patch_embed.proj.bias': (s['dim'], )}
    for i in range(s['depth']):
        b = f'visual.blocks.{i}.'
        shapes.update({b + 'norm1.weight': (s['dim'], ), b + 'norm1.bias': (s['dim'], ),
                       b + 'attn.q_bias': (s['dim'], ), b + 'attn.v_bias': (s['dim'], ),
                       b + 'attn.qkv.weight': (3 * s['dim'], s['dim']),
                       b + 'attn.proj.weight': (s['dim'], s['dim']),
                       b + 'attn.proj.bias': (s['dim'], ),
                       b + 'norm2.weight': (s['dim'], ), b + 'norm2.bias': (s['dim'], ),
                       b + 'mlp.fc1.weight': (s['ff'], s['dim']), b + 'mlp.fc1.bias': (s['ff'], ),
                       b + 'mlp.fc2.weight': (s['dim'], s['ff']), b + 'mlp.fc2.bias': (s['dim'], )})
    shapes.update({'visual.norm.weight': (s['dim'], ), 'visual.norm.bias': (s['dim'], ),
                   'visual.head.weight': (s['embed'], s['dim']),
                   'visual.head.bias': (s['embed'], ),
                   'text.token_embedding.weight': (s['vocab'], s['tw']),
                   'text.positional_embedding': (s['ctx'], s['tw'])})
    for i in range(s['tl']):
        b = f'text.transformer.resblocks.{i}.'
        w = s['tw']
        shapes.update({b + 'ln_1.weight': (w, ), b + 'ln_1.bias': (w, ),
                       b + 'attn.in_proj_weight': (3 * w, w), b + 'attn.in_proj_bias': (3 * w, ),
                       b + 'attn.out_proj.weight': (w, w), b + 'attn.out_proj.bias': (w, ),
                       b + 'ln_2.weight': (w, ), b + 'ln_2.bias': (w, ),
                       b + 'mlp.c_fc.weight': (4 * w, w), b + 'mlp.c_fc.bias': (4 * w, ),
                       b + 'mlp.c_proj.weight': (w, 4 * w), b + 'mlp.c_proj.bias': (w, )})
    shapes.update({'text.ln_final.weight': (s['tw'], ), 'text.ln_final.bias': (s['tw'], ),
                   'text.text_projection': (s['tw'], s['embed']), 'text.logit_scale': ()})
    if device == 'meta':
        return {k: torch.empty(v, device='meta', dtype=dtype) for k, v in shapes.items()}
    return {k: (torch.randn(v, generator=g) * 0.05).to(dtype) for k, v in shapes.items()}


def build_tiny(**kw):
    model = MODELS.build(clip_cfg(TINY, **kw))
    model.init_weights()
    return model.eval()


# ---------------------------------------------------------------------- conversion
def test_giant_keys_and_shapes_match_release():
    """Every tensor of the released layout lands in the full-size model with its shape."""
    sd = official_state_dict(GIANT, device='meta')
    assert len(sd) == 4 + 40 * 13 + 4 + 2 + 12 * 12 + 2 + 1 + 1  # 678 tensors
    out = convert_eva_clip(sd)
    from mmengine.config import Config
    cfg = Config.fromfile('configs/clip/eva-clip_vit-g-p14_zeroshot-cls_in1k.py')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)  # the real zero-shot config
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert set(out) == set(own)
    assert {k: tuple(v.shape) for k, v in out.items()} == own
    assert own['clip_projection.weight'] == (1024, 1408) and own['logit_scale'] == ()
    n_params = sum(v.numel() for v in model.parameters())
    assert n_params == sum(v.numel() for v in sd.values())


def test_round_trip_tiny(tmp_path):
    sd = official_state_dict(TINY)
    path = tmp_path / 'eva_clip_psz14.pt'
    torch.save(sd, path)
    assert detect_format(sd).name == 'eva-clip'
    out = convert_checkpoint(str(path))['state_dict']
    model = build_tiny()
    model.load_state_dict(out, strict=True)  # nothing missing, nothing left over
    msd = model.state_dict()
    assert torch.equal(msd['logit_scale'], sd['text.logit_scale'].float())
    assert torch.equal(msd['clip_projection.weight'], sd['visual.head.weight'].float())
    assert torch.equal(msd['backbone.norm.bias'], sd['visual.norm.bias'].float())
    assert torch.equal(msd['text.transformer.resblocks.1.attn.in_proj_weight'],
                       sd['text.transformer.resblocks.1.attn.in_proj_weight'].float())
    assert all(v.dtype == torch.float32 for v in out.values())
    # the causal-mask buffer of some saves is dropped, a stray tensor is an error
    sd['text.attn_mask'] = torch.zeros(TINY['ctx'], TINY['ctx'])
    assert set(convert_eva_clip(dict(sd))) == set(out)
    sd['visual.lm_head.weight'] = torch.zeros(2, 2)
    with pytest.raises(KeyError, match='no mapping'):
        convert_eva_clip(sd)


def test_repack_with_top_level_logit_scale():
    sd = official_state_dict(TINY)
    sd['logit_scale'] = sd.pop('text.logit_scale')
    assert convert_eva_clip(sd)['logit_scale'].shape == ()
    sd['text.logit_scale'] = sd['logit_scale']
    with pytest.raises(KeyError, match='both'):
        convert_eva_clip(sd)


# ---------------------------------------------------------------------- towers and loss
def test_text_tower_eot_pooling_and_causality():
    model = build_tiny()
    tok = model.tokenizer(['a red circle', 'a blue square'])
    with torch.no_grad():
        ref = model.encode_text(tok, normalize=False)
        junk = tok.clone()
        eot = tok.argmax(-1)
        for i, e in enumerate(eot):  # tokens after <end_of_text> cannot reach it (causal)
            junk[i, e + 1:] = 1000
        assert torch.allclose(model.encode_text(junk, normalize=False), ref, atol=1e-5)
        early = tok.clone()
        early[:, 1] = 2000  # a token before it changes the embedding
        assert not torch.allclose(model.encode_text(early, normalize=False), ref, atol=1e-3)
    assert ref.shape == (2, TINY['embed'])


def test_image_tower_is_projected_normed_cls_token():
    model = build_tiny()
    x = torch.randn(2, 3, 28, 28)
    with torch.no_grad():
        tokens = model.backbone.patch_embed(x)[0]
        feat = model.encode_image(x, normalize=False)
        vit = model.backbone(x)[0]  # LN'd cls token
        manual = F.linear(vit, model.clip_projection.weight, model.clip_projection.bias)
    assert tokens.shape == (2, 4, TINY['dim'])
    assert torch.allclose(feat, manual)
    assert torch.allclose(vit.mean(-1), torch.zeros(2), atol=1e-5)  # final LN, unit gain


def test_contrastive_loss_hand_computed():
    s = 2.
    eye = torch.eye(3, 4)
    # orthonormal pairs: each row's logits are (s, 0, 0), loss = log(1 + 2 e^-s)
    expected = math.log(1 + 2 * math.exp(-s))
    loss = clip_contrastive_loss(eye, eye, torch.tensor(s)).item()
    assert loss == pytest.approx(expected, rel=1e-5)
    # swapping two captions: rows 0, 1 see their positive at cos 0
    txt = eye[[1, 0, 2]]
    expected = (2 * math.log(2 + math.exp(s)) + math.log(1 + 2 * math.exp(-s))) / 3
    loss = clip_contrastive_loss(eye, txt, torch.tensor(s)).item()
    assert loss == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match='must match'):
        clip_contrastive_loss(eye, eye[:2], torch.tensor(s))


def _dist_worker(rank, world, store, img, txt, out):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{store}', rank=rank,
                            world_size=world)
    n = img.shape[0] // world
    mine_i = img[rank * n:(rank + 1) * n].clone().requires_grad_(True)
    loss = clip_contrastive_loss(mine_i, txt[rank * n:(rank + 1) * n], torch.tensor(5.))
    loss.backward()
    torch.save(dict(loss=loss.item(), grad=mine_i.grad), f'{out}/{rank}.pt')
    dist.destroy_process_group()


def test_gathered_loss_equals_global_batch(tmp_path):
    """Two gloo processes with half a batch each see the loss of the whole batch."""
    import time

    import torch.multiprocessing as mp
    g = torch.Generator().manual_seed(0)
    img = F.normalize(torch.randn(8, 6, generator=g), dim=-1)
    txt = F.normalize(torch.randn(8, 6, generator=g), dim=-1)
    full_i = img.clone().requires_grad_(True)
    full = clip_contrastive_loss(full_i, txt, torch.tensor(5.))
    full.backward()
    # spawn (not fork): a forked child of a process that already ran OpenMP can hang
    ctx = mp.start_processes(_dist_worker, nprocs=2, join=False, start_method='spawn',
                             args=(2, str(tmp_path / 'store'), img, txt, str(tmp_path)))
    deadline = time.time() + 240
    while not ctx.join(timeout=5):
        if time.time() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail('distributed workers did not finish')
    for rank in range(2):
        r = torch.load(tmp_path / f'{rank}.pt')
        assert r['loss'] == pytest.approx(full.item(), rel=1e-6)
        # local rows get the full-batch gradient (the other rank's copy is a constant)
        assert torch.allclose(r['grad'], full_i.grad[rank * 4:(rank + 1) * 4], atol=1e-6)


def test_loss_mode_needs_captions():
    model = build_tiny()
    x = torch.randn(2, 3, 28, 28)
    samples = [DataSample(), DataSample()]
    with pytest.raises(KeyError, match='caption'):
        model(x, samples, mode='loss')
    for ds, t in zip(samples, ['a red circle', 'a blue square']):
        ds.set_field(t, 'text')
    losses = model(x, samples, mode='loss')
    assert set(losses) == {'loss', 'logit_scale'}
    assert losses['logit_scale'].item() == pytest.approx(1 / 0.07, rel=1e-5)


# ---------------------------------------------------------------------- zero-shot
def test_classifier_is_renormalised_template_mean():
    model = build_tiny(classnames=['red circle', 'blue square'],
                       templates=['a {}.', 'a photo of a {}.', 'itap of my {}.'])
    clf = model.build_classifier()
    with torch.no_grad():
        manual = []
        for name in ['red circle', 'blue square']:
            e = model.encode_text([f'a {name}.', f'a photo of a {name}.', f'itap of my {name}.'])
            manual.append(F.normalize(e.mean(0), dim=-1))
    assert torch.allclose(clf, torch.stack(manual), atol=1e-6)
    assert torch.allclose(clf.norm(dim=-1), torch.ones(2))


def test_predict_uses_100_cos(monkeypatch):
    model = build_tiny(classnames=['a', 'b', 'c'], templates=['{}'])
    clf = model.build_classifier()
    image = F.normalize(clf[[2, 0]] + 0.01, dim=-1)
    monkeypatch.setattr(model, 'encode_image', lambda x: image)
    samples = [DataSample().set_gt_label(2), DataSample().set_gt_label(1)]
    out = model(torch.zeros(2, 3, 28, 28), samples, mode='predict')
    assert [int(o.pred_label) for o in out] == [2, 0]
    assert [int(o.gt_label) for o in out] == [2, 1]
    expected = F.softmax(100 * image @ clf.t(), dim=-1)
    assert torch.allclose(torch.stack([o.pred_score for o in out]), expected, atol=1e-5)
    model.set_classes(None)
    with pytest.raises(ValueError, match='classnames'):
        model(torch.zeros(1, 3, 28, 28), None, mode='predict')


def test_templates_and_classnames():
    assert len(zero_shot.get_templates('openai_imagenet')) == 80
    assert len(zero_shot.get_templates('openai_cifar')) == 18
    assert zero_shot.get_templates('openai_imagenet')[0]('tench') == 'a bad photo of a tench.'
    assert zero_shot.get_templates(['a {} here'])[0]('cat') == 'a cat here'
    with pytest.raises(ValueError, match='no "{}"'):
        zero_shot.get_templates(['a cat'])
    names = zero_shot.get_classnames('imagenet')
    assert len(names) == 1000 and names[0] == 'tench' and names[-1] == 'toilet paper'
    a, r = zero_shot.get_classnames('imagenet-a'), zero_shot.get_classnames('imagenet-r')
    assert len(a) == len(r) == 200
    assert a[:2] == ['stingray', 'goldfinch']  # n01498041, n01531178: the first two folders
    assert r[:2] == ['goldfish', 'great white shark']
    assert len(zero_shot.get_classnames('cifar100')) == 100
    assert 'aquarium fish' in zero_shot.get_classnames('cifar100')
    with pytest.raises(KeyError, match='unknown class-name set'):
        zero_shot.get_classnames('imagenet-z')


def test_classname_files(tmp_path):
    ucf = tmp_path / 'classInd.txt'
    ucf.write_text('2 ApplyLipstick\n1 ApplyEyeMakeup\n3 YoYo\n4 PlayingDaf\n')
    assert zero_shot.get_classnames(dict(file=str(ucf), camel_case=True)) == [
        'Apply Eye Makeup', 'Apply Lipstick', 'Yo Yo', 'Playing Daf']
    k400 = tmp_path / 'label_map_k400.txt'
    k400.write_text('abseiling\nair drumming\n')
    assert zero_shot.get_classnames(dict(file=str(k400))) == ['abseiling', 'air drumming']
    with pytest.raises(FileNotFoundError):
        zero_shot.get_classnames(dict(file=str(tmp_path / 'nope.txt')))


def _objectnet(root):
    os.makedirs(osp.join(root, 'mappings'))
    with open(osp.join(root, 'mappings', 'folder_to_objectnet_label.json'), 'w') as f:
        json.dump({'water_bottle': 'Water bottle', 'air_freshener': 'Air freshener',
                   'banana': 'Banana'}, f)
    with open(osp.join(root, 'mappings', 'objectnet_to_imagenet_1k.json'), 'w') as f:
        json.dump({'Water bottle': 'water bottle', 'Banana': 'banana'}, f)
    from PIL import Image
    for folder in ('water_bottle', 'air_freshener', 'banana'):
        os.makedirs(osp.join(root, 'images', folder))
        for j in range(2):
            Image.new('RGB', (8, 8)).save(osp.join(root, 'images', folder, f'{j}.png'))


def test_objectnet_and_imagenet_v2(tmp_path):
    from projects.eva.clip.datasets import ImageNetV2, ObjectNet
    root = str(tmp_path / 'objectnet-1.0')
    _objectnet(root)
    ds = ObjectNet(data_root=root)
    assert ds.metainfo['classes'] == ('banana', 'water bottle')  # overlap only, sorted
    assert zero_shot.get_classnames(dict(objectnet=root)) == ['banana', 'water bottle']
    assert [d['gt_label'] for d in ds.load_data_list()] == [0, 0, 1, 1]
    from PIL import Image
    v2 = tmp_path / 'v2'
    for c in ('0', '2', '10', '1'):
        os.makedirs(v2 / c)
        Image.new('RGB', (8, 8)).save(v2 / c / 'a.jpeg')
    labels = [d['gt_label'] for d in ImageNetV2(data_root=str(v2)).load_data_list()]
    assert labels == [0, 1, 2, 10]
    os.makedirs(v2 / 'n01440764')
    with pytest.raises(ValueError, match='class indices'):
        ImageNetV2(data_root=str(v2))


def test_summary_with_paper_numbers():
    top1 = dict(zero_shot.PAPER_TOP1)
    s = zero_shot.summarize(top1)
    family = (78.53 + 71.52 + 73.59 + 92.5 + 67.31 + 72.33) / 6
    assert s['imagenet_family_avg'] == pytest.approx(family)
    assert s['robustness_delta'] == pytest.approx(78.53 - family)  # 2.57
    assert s['avg_12'] is None  # CIFAR missing
    top1.update(cifar10=98.0, cifar100=88.0)
    assert zero_shot.summarize(top1)['avg_12'] == pytest.approx(
        (sum(zero_shot.PAPER_TOP1.values()) + 186.0) / 12)
    with pytest.raises(KeyError, match='unknown benchmarks'):
        zero_shot.summarize({'imagenet': 1.0})


def test_video_centre_frame(tmp_path):
    """The video config's pipeline decodes the centre frame of a real video file."""
    cv2 = pytest.importorskip('cv2')
    pytest.importorskip('decord')
    path = str(tmp_path / 'clip.mp4')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 10, (32, 32))
    for i in range(9):  # frame i: grey level 25 * i, a red square in the top left (BGR)
        frame = np.full((32, 32, 3), 25 * i, np.uint8)
        frame[:8, :8] = (0, 0, 255)
        writer.write(frame)
    writer.release()
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile('configs/clip/eva-clip_vit-g-p14_zeroshot-cls_k400.py')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        pipeline = Compose(cfg.video_pipeline)
        out = pipeline(dict(filename=path, label=3, start_index=0, modality='RGB'))
    img = out['inputs']  # (3, 224, 224), BGR like LoadImageFromFile
    assert tuple(img.shape) == (3, 224, 224)
    assert abs(float(img[:, 150:, 150:].float().mean()) - 25 * 4) < 6  # centre frame = 4
    assert float(img[2, 5:40, 5:40].float().mean()) > 200  # red is channel 2 in BGR
    assert int(out['data_samples'].gt_label) == 3


def test_layer_decay_groups_with_text_tower():
    from mmengine.optim import build_optim_wrapper
    model = build_tiny()
    wrapper = build_optim_wrapper(model, dict(
        constructor='EVALayerDecayOptimWrapperConstructor',
        optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.2),
        paramwise_cfg=dict(layer_decay_rate=0.5, no_decay_keys=('logit_scale', ))))
    groups = {g['param_name']: g for g in wrapper.optimizer.param_groups}
    assert groups['backbone.pos_embed']['lr'] == pytest.approx(0.5 ** 3)  # 2 blocks + 2 ids
    assert groups['backbone.blocks.1.attn.qkv.weight']['lr'] == pytest.approx(0.5)
    assert groups['text.token_embedding.weight']['lr'] == 1.0
    assert groups['logit_scale']['weight_decay'] == 0
    assert groups['clip_projection.weight']['weight_decay'] == 0.2


def test_openai_text_init(tmp_path):
    """The text tower takes OpenAI CLIP-L's text weights; the 768x768-style projection that
    does not fit stays random."""
    donor = build_tiny().text.state_dict()
    sd = {k: torch.randn_like(v) for k, v in donor.items()}
    sd['text_projection'] = torch.randn(TINY['tw'], TINY['tw'])  # OpenAI: width x width
    sd['logit_scale'] = torch.tensor(4.6)
    sd['visual.proj'] = torch.randn(4, 4)
    torch.save(sd, tmp_path / 'openai.pt')
    cfg = clip_cfg(TINY)
    cfg['text_backbone']['pretrained'] = str(tmp_path / 'openai.pt')
    model = MODELS.build(cfg)
    model.init_weights()
    assert torch.equal(model.text.token_embedding.weight, sd['token_embedding.weight'])
    assert torch.equal(model.text.transformer.resblocks[1].mlp.c_fc.bias,
                       sd['transformer.resblocks.1.mlp.c_fc.bias'])
    assert model.text.text_projection.shape == (TINY['tw'], TINY['embed'])
    sd['positional_embedding'] = torch.randn(3, TINY['tw'])
    torch.save(sd, tmp_path / 'bad.pt')
    with pytest.raises(ValueError, match='shapes differ'):
        model.text.load_openai_text(str(tmp_path / 'bad.pt'))


def test_build_requires_cls_token_output():
    cfg = clip_cfg(TINY)
    cfg['vision_backbone']['out_type'] = 'avg_featmap'
    with pytest.raises(ValueError, match='cls_token'):
        MODELS.build(cfg)
    assert isinstance(build_tiny(), EVACLIP)


def test_real_configs_parse():
    import glob

    from mmengine.config import Config
    expected = {'in1k': 'imagenet', 'in1k-v2': 'imagenet', 'in1k-a': 'imagenet-a',
                'in1k-r': 'imagenet-r', 'in1k-sketch': 'imagenet', 'cifar10': 'cifar10',
                'cifar100': 'cifar100'}
    files = sorted(glob.glob('configs/clip/eva-clip_vit-g-p14_zeroshot-cls_*.py'))
    assert len(files) == 12
    for f in files:
        cfg = Config.fromfile(f)
        suffix = f[:-3].rsplit('zeroshot-cls_', 1)[1]
        if suffix in expected:
            assert cfg.model.classnames == expected[suffix], f
        assert cfg.model.templates == ('openai_cifar' if 'cifar' in f else 'openai_imagenet')
        assert cfg.model.zero_shot_scale == 100.
        assert cfg.load_from == 'checkpoints/eva/eva_clip_psz14_mm.pth'
    train = Config.fromfile('configs/clip/eva-clip_vit-g-p14_256xb160-11b_laion400m.py')
    assert train.train_dataloader.batch_size * 256 == 40_960
    assert train.model.vision_backbone.drop_path_rate == 0.4
    assert train.model.text_backbone.act == 'gelu'
    assert train.train_cfg.max_iters * 40_960 == pytest.approx(11e9, rel=1e-4)


def test_report_collects_work_dirs(tmp_path, capsys):
    from projects.eva.clip import report
    dirs = []
    for suffix, top1 in (('in1k', 78.0), ('in1k-v2', 70.0), ('k400', 65.0)):
        d = tmp_path / f'eva-clip_vit-g-p14_zeroshot-cls_{suffix}' / '20260101_000000'
        d.mkdir(parents=True)
        (d / '20260101_000000.json').write_text(
            json.dumps({'accuracy/top1': top1, 'accuracy/top5': 99.0}) + '\n')
        dirs.append(str(d.parent))
    assert report.collect(dirs) == {'imagenet-1k': 78.0, 'imagenet-v2': 70.0,
                                    'kinetics400': 65.0}
    report.main(dirs)
    text = capsys.readouterr().out
    assert '| imagenet-1k | 78.00 | 78.53 |' in text and '| kinetics600 | - | 64.38 |' in text
    with pytest.raises(ValueError, match='benchmark'):
        report.benchmark_of('work_dirs/something_else')
