"""EVA-02-CLIP: the B/16, L/14, L/14-336 (and E/14, E/14+) towers as EVAViT presets + the
OpenAI-CLIP text tower, exact sizes, the converter for the official ``EVA02_CLIP_*`` files,
parity against independent implementations (timm's ``eva02_*_clip`` vision towers,
open_clip's ``TextTransformer``), and the zero-shot configs.

The official-layout files are built here from timm / open_clip models with the key map of
eva02_reference.md section 9 (written out below, not taken from the converter), so the
converter is checked against the documented layout and the numbers against code we did not
write."""
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import projects.eva.clip  # noqa: F401  (EVACLIP, EVACLIPTextTransformer)
from projects.eva.converters import detect_format
from projects.eva.converters.eva02_clip import convert_eva02_clip

timm = pytest.importorskip('timm')
open_clip_transformer = pytest.importorskip('open_clip.transformer')
TOL = dict(rtol=1e-5, atol=1e-5)
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# official (rei CustomCLIP) <- timm names, eva02_reference.md 9 (timm column -> official)
TIMM_TO_OFFICIAL = [
    (r'\.mlp\.fc1_g\.', '.mlp.w1.'), (r'\.mlp\.fc1_x\.', '.mlp.w2.'),
    (r'\.mlp\.norm\.', '.mlp.ffn_ln.'), (r'\.attn\.norm\.', '.attn.inner_attn_ln.'),
    (r'\.attn\.q_proj\.bias$', '.attn.q_bias'), (r'\.attn\.v_proj\.bias$', '.attn.v_bias'),
]

# timm model, its kwargs at full size, our arch, patch, image size, text (width, layers,
# heads, embed), and the exact counts of eva02_reference.md 1.3 (visual with norm + head,
# text, total with logit_scale)
TOWERS = {
    'B/16': ('eva02_base_patch16_clip_224', 'eva02-clip-base', 16, 224, (512, 12, 8, 512),
             86_263_040, 63_428_096, 149_691_137),
    'L/14': ('eva02_large_patch14_clip_224', 'eva02-clip-large', 14, 224, (768, 12, 12, 768),
             304_105_152, 123_650_304, 427_755_457),
    'L/14-336': ('eva02_large_patch14_clip_336', 'eva02-clip-large', 14, 336,
                 (768, 12, 12, 768), 304_432_832, 123_650_304, 428_083_137),
    'E/14': ('eva02_enormous_patch14_clip_224', 'eva02-clip-enormous', 14, 224,
             (1024, 24, 16, 1024), 4_350_556_928, 354_032_640, 4_704_589_569),
    'E/14+': ('eva02_enormous_patch14_clip_224', 'eva02-clip-enormous', 14, 224,
              (1280, 32, 20, 1024), 4_350_556_928, 694_332_160, 5_044_889_089),
}


def count(module):
    return sum(p.numel() for p in module.parameters())


def official_file(visual: torch.nn.Module, text: torch.nn.Module, logit_scale: float,
                  rope_grid=None, attn_mask=True) -> dict:
    """A rei ``CustomCLIP`` state dict from a timm vision tower and an open_clip text
    tower: ``visual.*`` in the official names, rope buffers as rei persists them (top level
    and one copy per block), ``text.*``, top-level ``logit_scale``."""
    sd = {}
    tower = visual.state_dict()
    swiglu = any('mlp.fc1_g' in k for k in tower)  # B/L: fc2 is w3; E's GELU keeps fc1/fc2
    for k, v in tower.items():
        for pattern, repl in TIMM_TO_OFFICIAL + ([(r'\.mlp\.fc2\.', '.mlp.w3.')] if swiglu else []):
            k = re.sub(pattern, repl, k)
        sd['visual.' + k] = v
    if rope_grid:
        depth = len(visual.blocks)
        head_dim = visual.blocks[0].attn.head_dim
        table = torch.randn(rope_grid * rope_grid, head_dim)  # wrong on purpose: never read
        for prefix in ['visual.rope.'] + [f'visual.blocks.{i}.attn.rope.' for i in range(depth)]:
            sd[prefix + 'freqs_cos'], sd[prefix + 'freqs_sin'] = table, table
    for k, v in text.state_dict().items():
        sd['text.' + k] = v
    if attn_mask:  # older open_clip files persist the causal mask
        sd['text.attn_mask'] = text.build_causal_mask()
    sd['logit_scale'] = torch.tensor(logit_scale)
    return sd


def ours_cfg(arch, patch, img, text, vocab=49408, context=77):
    width, layers, heads, embed = text
    return dict(
        type='EVACLIP',
        vision_backbone=dict(type='EVAViT', arch=arch, img_size=img, patch_size=patch,
                             out_type='cls_token', final_norm=True),
        text_backbone=dict(type='EVACLIPTextTransformer', vocab_size=vocab,
                           context_length=context, width=width, layers=layers, heads=heads,
                           embed_dim=embed, act='gelu'))


def open_clip_text(text, vocab=49408, context=77):
    width, layers, heads, embed = text
    return open_clip_transformer.TextTransformer(
        context_length=context, vocab_size=vocab, width=width, heads=heads, layers=layers,
        output_dim=embed)


# ---------------------------------------------------------------- presets, exact sizes
@pytest.mark.parametrize('tower', list(TOWERS))
def test_presets_have_the_released_sizes_and_the_official_layout(tower):
    """Full size on the meta device: our EVACLIP has exactly the parameter counts of the
    release, and exactly the keys and shapes of the official file built from timm's tower and
    open_clip's text transformer (converted)."""
    name, arch, patch, img, text, n_visual, n_text, n_total = TOWERS[tower]
    with torch.device('meta'):
        ours = MODELS.build(ours_cfg(arch, patch, img, text))
        visual = timm.create_model(name, pretrained=False, num_classes=text[3])
        reference = official_file(visual, open_clip_text(text), 0., rope_grid=None)
    assert count(ours.backbone) + count(ours.clip_projection) == n_visual
    assert count(ours.text) == n_text
    assert count(ours) == n_total
    assert count(visual) == n_visual  # timm's tower agrees with the reference numbers
    converted = convert_eva02_clip(reference)
    want = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in converted.items()} == want


def test_preset_options():
    from projects.eva.models.eva_vit import parse_arch
    base, large = parse_arch('eva02-clip-base'), parse_arch('eva02-clip-large')
    for arch in (base, large):  # the EVA-02 B/L layout plus inner_attn_ln, pre-norm
        assert arch['mlp_type'] == 'swiglu' and arch['sub_ln'] and arch['rope']
        assert arch['inner_attn_ln'] and not arch['post_norm']
    assert parse_arch('eva02-base')['feedforward_channels'] == base['feedforward_channels']
    e = parse_arch('eva02-clip-enormous')
    assert e['post_norm'] and e['mlp_type'] == 'gelu' and not e['rope'] and not e['sub_ln']
    assert not e['inner_attn_ln'] and e['feedforward_channels'] == 15360


# ---------------------------------------------------------------- numeric parity
SMALL_TEXT = (64, 2, 2, 32)


def randomised(module, dtype):
    """Weights of unit gain (std fan_in^-0.5: with timm's 0.02 init the residual stream
    hides the blocks, and a pre-norm tower differs from a post-norm one by 1e-4 only),
    off-init values for every 1-D tensor (LN, biases: timm and open_clip start them at 1/0),
    then every tensor rounded through the file's dtype, so the fp32 reference holds exactly
    the weights the converted file carries."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            if p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.2)
            elif p.shape[0] == 1:  # cls token, position table
                p.normal_(std=0.5)
            else:
                p.normal_(std=(p.numel() // p.shape[0]) ** -0.5)
            p.copy_(p.to(dtype).float())
    return module.eval()


def save(sd, path, container, dtype):
    sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in sd.items()}
    torch.save(sd if container == 'raw' else {container: sd, 'epoch': 3}, path)


def convert_file(tmp_path, sd, container, dtype, fmt=None):
    from tools.model_converters.eva_to_mm import main
    src, dst = tmp_path / 'EVA02_CLIP.pt', tmp_path / 'EVA02_CLIP_mm.pth'
    save(sd, src, container, dtype)
    main([str(src), str(dst)] + (['--format', fmt] if fmt else []))
    return torch.load(dst, weights_only=True)


def text_tokens(batch=3, context=77, eot=49407):
    """Random ids < EOT, an EOT (the largest id: argmax pooling) at a different place per
    row, random ids after it (the causal mask must hide them)."""
    torch.manual_seed(2)
    tokens = torch.randint(1, eot, (batch, context))
    for i, pos in enumerate((5, 17, context - 1)[:batch]):
        tokens[i, pos] = eot
    return tokens


@pytest.mark.parametrize('tower,img,container,dtype', [
    ('B/16', 224, 'raw', torch.float16),
    ('L/14-336', 336, 'model', torch.bfloat16),
    ('L/14', 224, 'state_dict', torch.float32),
    ('L/14', 224, 'module', torch.float16),
])
def test_converted_release_matches_timm_and_open_clip(tmp_path, one_thread, tower, img,
                                                      container, dtype):
    """A random official-layout file (timm tower at 2 blocks / width 64, open_clip text at 2
    layers / width 64; fp16, bf16 or fp32 in each container) converted by the CLI and loaded
    strictly: image embeddings = timm's ``head(norm(x)[:, 0])``, text embeddings = open_clip's
    text transformer (GELU, causal, EOT pooling, text_projection), within 1e-5; at 336 the
    RoPE positions are squeezed into the 16 x 16 reference grid as timm's ``ref_feat_shape``."""
    name, _, patch, full_img, _, _, _, _ = TOWERS[tower]
    assert img == full_img
    torch.manual_seed(0)
    visual = randomised(timm.create_model(name, pretrained=False, depth=2, embed_dim=64,
                                          num_heads=2, num_classes=SMALL_TEXT[3]), dtype)
    text = randomised(open_clip_text(SMALL_TEXT), dtype)
    sd = official_file(visual, text, 4.2, rope_grid=img // patch)
    converted = convert_file(tmp_path, sd, container, dtype)
    assert converted['meta']['source_format'] == 'eva02-clip'
    assert all(v.dtype == torch.float32 for v in converted['state_dict'].values())
    arch = dict(embed_dims=64, num_layers=2, num_heads=2, feedforward_channels=170,
                mlp_type='swiglu', sub_ln=True, rope=True, inner_attn_ln=True)
    ours = MODELS.build(ours_cfg(arch, patch, img, SMALL_TEXT)).eval()
    res = ours.load_state_dict(converted['state_dict'], strict=True)
    assert not res.missing_keys and not res.unexpected_keys
    x = torch.randn(2, 3, img, img)
    tokens = text_tokens()
    with torch.no_grad():
        torch.testing.assert_close(ours.encode_image(x, normalize=False), visual(x), **TOL)
        torch.testing.assert_close(ours.encode_text(tokens, normalize=False), text(tokens),
                                   **TOL)
    assert ours.logit_scale.item() == pytest.approx(float(torch.tensor(4.2).to(dtype)))
    # the RoPE buffers of the file are dropped by a named rule, not loaded
    assert any('rope' in k for k in converted['meta']['dropped'])
    assert 'text.attn_mask' in converted['meta']['dropped']


def test_enormous_post_norm_tower_matches_timm(tmp_path, one_thread):
    """E/14 (fused qkv, GELU MLP, no RoPE, residual post-norm) at 2 blocks / width 64: an E
    file has EVA-01's tensor layout, so it is detected as ``eva-clip``; ``--format
    eva02-clip`` gives the same tensors. The post-norm EVAViT equals timm's
    ``EvaBlockPostNorm`` tower; the pre-norm blocks of the same weights do not."""
    torch.manual_seed(0)
    visual = randomised(timm.create_model('eva02_enormous_patch14_clip_224', pretrained=False,
                                          depth=2, embed_dim=64, num_heads=2,
                                          num_classes=SMALL_TEXT[3]), torch.bfloat16)
    text = randomised(open_clip_text(SMALL_TEXT), torch.bfloat16)
    sd = official_file(visual, text, 4.6, rope_grid=None, attn_mask=False)
    detected = convert_file(tmp_path, sd, 'raw', torch.bfloat16)
    assert detected['meta']['source_format'] == 'eva-clip'
    forced = convert_file(tmp_path, sd, 'raw', torch.bfloat16, fmt='eva02-clip')
    assert forced['meta']['source_format'] == 'eva02-clip'
    assert sorted(forced['state_dict']) == sorted(detected['state_dict'])
    for k, v in forced['state_dict'].items():
        assert torch.equal(v, detected['state_dict'][k]), k
    hidden = visual.blocks[0].mlp.fc1.out_features
    arch = dict(embed_dims=64, num_layers=2, num_heads=2, feedforward_channels=hidden,
                post_norm=True)
    x = torch.randn(2, 3, 224, 224)
    outs = {}
    for post_norm in (True, False):
        ours = MODELS.build(ours_cfg(dict(arch, post_norm=post_norm), 14, 224,
                                     SMALL_TEXT)).eval()
        ours.load_state_dict(forced['state_dict'], strict=True)
        with torch.no_grad():
            outs[post_norm] = ours.encode_image(x, normalize=False)
            torch.testing.assert_close(ours.encode_text(text_tokens(), normalize=False),
                                       text(text_tokens()), **TOL)
    with torch.no_grad():
        torch.testing.assert_close(outs[True], visual(x), **TOL)
        assert (outs[False] - visual(x)).abs().max() > 1e-2


def test_post_norm_block_formula():
    """x + norm1(attn(x)), then + norm2(mlp(x)), written out from rei's Block (postnorm)."""
    from projects.eva.models.eva_vit import Block
    torch.manual_seed(0)
    blk = Block(32, 2, 64, post_norm=True).eval()
    with torch.no_grad():
        for p in blk.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        x = torch.randn(2, 5, 32)
        h = x + blk.norm1(blk.attn(x))
        want = h + blk.norm2(blk.mlp(h))
        torch.testing.assert_close(blk(x), want)


# ---------------------------------------------------------------- converter errors
def tiny_official(**kw):
    torch.manual_seed(0)
    visual = timm.create_model('eva02_base_patch16_clip_224', pretrained=False, depth=2,
                               embed_dim=64, num_heads=2, num_classes=32, img_size=64)
    return official_file(visual, open_clip_text(SMALL_TEXT, context=8), 4.6, rope_grid=4, **kw)


def test_detection_and_strict_key_coverage():
    sd = tiny_official()
    assert detect_format(sd).name == 'eva02-clip'
    # an EVA-01 CLIP file is not this format (and this file is not EVA-01's)
    from projects.eva.converters.eva02_clip import eva02_clip_problem
    from projects.eva.converters.clip import _is_eva_clip
    assert not _is_eva_clip(sd)
    incomplete = dict(sd)
    del incomplete['visual.blocks.1.attn.inner_attn_ln.bias']
    assert "visual.blocks.1 lacks ['attn.inner_attn_ln.bias']" in eva02_clip_problem(incomplete)
    with pytest.raises(ValueError, match='near misses: .*eva02-clip: visual.blocks.1'):
        detect_format(incomplete)
    with pytest.raises(KeyError, match='inner_attn_ln'):
        convert_eva02_clip(incomplete)
    extra = dict(sd, **{'visual.fc_norm.weight': torch.ones(64)})
    with pytest.raises(KeyError, match='visual.fc_norm.weight is not part'):
        convert_eva02_clip(extra)
    stray = dict(sd, **{'text.unknown': torch.ones(1)})
    with pytest.raises(KeyError, match=r"no mapping: \['text.unknown'\]"):
        convert_eva02_clip(stray)
    wrong = dict(sd, **{'visual.blocks.0.mlp.w3.weight': torch.ones(64, 64)})
    with pytest.raises(KeyError, match=r'mlp.w3.weight has shape \(64, 64\), an EVA-02-CLIP B/L '
                                      r'block of width 64 has \(64, 170\)'):
        convert_eva02_clip(wrong)
    no_text = {k: v for k, v in sd.items() if not k.startswith('text.')}
    assert 'no text.token_embedding' in eva02_clip_problem(no_text)


# ---------------------------------------------------------------- zero-shot configs
EVA01_LEAVES = sorted(glob.glob(
    osp.join(ROOT, 'configs/clip/eva-clip_vit-g-p14_zeroshot-cls_*.py')))
MODELS_02 = {  # config name part: arch, patch, img, text dims, converted checkpoint
    'eva02-clip_vit-b-p16': ('eva02-clip-base', 16, 224, (512, 12, 8, 512),
                             'checkpoints/eva02/EVA02_CLIP_B_psz16_s8B_mm.pth'),
    'eva02-clip_vit-l-p14': ('eva02-clip-large', 14, 224, (768, 12, 12, 768),
                             'checkpoints/eva02/EVA02_CLIP_L_psz14_s4B_mm.pth'),
    'eva02-clip_vit-l-p14-336px': ('eva02-clip-large', 14, 336, (768, 12, 12, 768),
                                   'checkpoints/eva02/EVA02_CLIP_L_336_psz14_s6B_mm.pth'),
    # E/14, E/14+: IN-1K only
    'eva02-clip_vit-e-p14': ('eva02-clip-enormous', 14, 224, (1024, 24, 16, 1024),
                             'checkpoints/eva02/EVA02_CLIP_E_psz14_s4B_mm.pth'),
    'eva02-clip_vit-e-p14-plus': ('eva02-clip-enormous', 14, 224, (1280, 32, 20, 1024),
                                  'checkpoints/eva02/EVA02_CLIP_E_psz14_plus_s9B_mm.pth'),
}
CLIP_MEAN = [0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255]
CLIP_STD = [0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255]


def _resizes(pipeline):
    return [(t['type'], t.get('scale', t.get('crop_size')), t.get('interpolation'))
            for t in pipeline if t['type'] in ('ResizeEdge', 'CenterCrop')]


@pytest.mark.parametrize('model_name', list(MODELS_02))
def test_zero_shot_configs_cover_the_eva01_sets_with_the_released_recipe(model_name):
    """One config per EVA-01 zero-shot set and model; the same data, classes and prompts
    as EVA-01's config, EVA-02-CLIP's towers, the model's resolution (Resize short side +
    CenterCrop, bicubic), CLIP mean/std, 100 * cos logits and the converted release."""
    arch, patch, img, (width, layers, heads, embed), ckpt = MODELS_02[model_name]
    assert len(EVA01_LEAVES) == 12
    leaves = [f for f in EVA01_LEAVES if f.endswith('_in1k.py')] if '-e-' in model_name \
        else EVA01_LEAVES
    for leaf in leaves:
        suffix = leaf.rsplit('zeroshot-cls_', 1)[1]
        path = osp.join(ROOT, 'configs/clip', f'{model_name}_zeroshot-cls_{suffix}')
        assert osp.exists(path), path
        cfg, ref = Config.fromfile(path), Config.fromfile(leaf)
        m = cfg.model
        vb, tb = m.vision_backbone, m.text_backbone
        assert (vb.arch, vb.patch_size, vb.img_size) == (arch, patch, img), path
        assert vb.out_type == 'cls_token' and vb.final_norm and vb.norm_eps == 1e-6
        assert (tb.width, tb.layers, tb.heads, tb.embed_dim, tb.act) == \
            (width, layers, heads, embed, 'gelu')
        assert (tb.vocab_size, tb.context_length) == (49408, 77)
        assert m.data_preprocessor.mean == CLIP_MEAN and m.data_preprocessor.std == CLIP_STD
        assert m.zero_shot_scale == 100.
        assert (m.classnames, m.templates) == (ref.model.classnames, ref.model.templates)
        assert cfg.load_from == ckpt
        ds, ref_ds = cfg.test_dataloader.dataset, ref.test_dataloader.dataset
        assert {k: v for k, v in ds.items() if k != 'pipeline'} == \
            {k: v for k, v in ref_ds.items() if k != 'pipeline'}
        assert _resizes(ds.pipeline) == [('ResizeEdge', img, 'bicubic'), ('CenterCrop', img, None)]
        # everything else in the pipeline (decoding, centre frame, packing) is EVA-01's
        assert [t for t in ds.pipeline if t['type'] not in ('ResizeEdge', 'CenterCrop')] == \
            [t for t in ref_ds.pipeline if t['type'] not in ('ResizeEdge', 'CenterCrop')]
        assert cfg.test_evaluator == ref.test_evaluator


RELEASED = {  # EVA-CLIP README model card: file, IN-1K zero-shot top-1; reference 1.3 counts
    'eva02-clip_vit-b-p16': ('EVA02_CLIP_B_psz16_s8B.pt', 74.7, 149_691_137),
    'eva02-clip_vit-l-p14': ('EVA02_CLIP_L_psz14_s4B.pt', 79.8, 427_755_457),
    'eva02-clip_vit-l-p14-336px': ('EVA02_CLIP_L_336_psz14_s6B.pt', 80.4, 428_083_137),
    'eva02-clip_vit-e-p14': ('EVA02_CLIP_E_psz14_s4B.pt', 81.9, 4_704_589_569),
    'eva02-clip_vit-e-p14-plus': ('EVA02_CLIP_E_psz14_plus_s9B.pt', 82.0, 5_044_889_089),
}


@pytest.mark.parametrize('model_name', list(RELEASED))
def test_metafile_entries_carry_the_released_numbers(model_name):
    """The model index entry: released file and IN-1K number, the exact parameter count,
    a converter command that writes the config's ``load_from``, the number in the header."""
    from projects.eva.apis.model_index import get_model_info
    weight_file, top1, params = RELEASED[model_name]
    info = get_model_info(f'{model_name}_zeroshot-in1k')
    assert info.weight_file == weight_file
    assert info.weights_url == 'https://huggingface.co/QuanSun/EVA-CLIP/resolve/main/' + \
        weight_file
    assert info.metric('Top 1 Accuracy') == top1
    assert info.metadata['Parameters'] == params
    assert info.config.endswith(f'configs/clip/{model_name}_zeroshot-cls_in1k.py')
    assert info.converted_checkpoint == Config.fromfile(info.config).load_from \
        == MODELS_02[model_name][4]
    with open(info.config) as f:
        assert f'Released (EVA-CLIP README): {top1} top-1.' in f.read()


def test_report_puts_runs_beside_their_own_models_release(tmp_path, capsys):
    """``python -m projects.eva.clip.report`` on EVA-02-CLIP runs compares with EVA-02-CLIP's
    released numbers (from the metafile), not EVA-01's; runs of two models are refused."""
    import json

    from projects.eva.clip import report

    def run(name, top1):
        d = tmp_path / name / '20260101_000000'
        d.mkdir(parents=True)
        (d / '20260101_000000.json').write_text(json.dumps({'accuracy/top1': top1}) + '\n')
        return str(d.parent)

    dirs = [run('eva02-clip_vit-b-p16_zeroshot-cls_in1k', 74.5),
            run('eva02-clip_vit-b-p16_zeroshot-cls_k400', 60.0)]
    assert report.released_top1('eva02-clip_vit-b-p16') == {'imagenet-1k': 74.7}
    report.main(dirs)
    text = capsys.readouterr().out
    assert '| benchmark | top-1 | released (eva02-clip_vit-b-p16) |' in text
    assert '| imagenet-1k | 74.50 | 74.70 |' in text
    assert '| kinetics400 | 60.00 | - |' in text  # EVA-01's 65.23 is not this model's
    with pytest.raises(SystemExit):
        report.main(dirs + [run('eva-clip_vit-g-p14_zeroshot-cls_in1k', 78.0)])


def test_image_encoder_with_rope_exports_to_onnx(tmp_path, one_thread):
    """tools/deployment/export_onnx.py on an EVA-02-CLIP image tower (RoPE tables built in the
    graph, inner_attn_ln, sub-LN SwiGLU): onnxruntime equals PyTorch at batch 1 and 3."""
    pytest.importorskip('onnxruntime')
    from projects.eva import deployment
    from projects.eva.apis.build import build_model
    demo = osp.join(ROOT, 'configs/demo/eva-clip_vit-tiny-p8_1xb64-6e_shapes-captions.py')
    arch = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=48,
                mlp_type='swiglu', sub_ln=True, rope=True, inner_attn_ln=True)
    torch.manual_seed(0)
    model = build_model(demo, None, cfg_options={'model.vision_backbone.arch': arch,
                                               'model.text_backbone.layers': 1})
    with torch.no_grad():  # zero q/v biases and unit LNs would hide a wrong graph
        for name, p in model.named_parameters():
            if name.endswith(('q_bias', 'v_bias')) or '_ln.' in name:
                p.normal_(0, 0.2)
    kind = deployment.model_kind(model, 'image')
    out = str(tmp_path / 'image.onnx')
    deployment.export(model, out, kind, dynamic_batch=True, config=demo)
    for batch in (1, 3):
        assert deployment.compare(model, out, kind, batch, (40, 40), seed=batch) < 1e-4
