"""Released weights by name: download from the metafile's URL (a local HTTP server on
127.0.0.1 here, serving small files in the release containers), resume a partial download,
convert once with the metafile's ``--format``, cache both files, work offline."""
import argparse
import functools
import http.server
import os
import os.path as osp
import threading

import pytest
import torch

from projects.eva.apis import hub
from projects.eva.apis.model_index import get_model_info, load_index
from projects.eva.converters import convert_checkpoint, format_names
from projects.eva.models import EVAViT

NAME = 'eva-g-p14_in21k-pre_in1k-336px'
RELEASE = 'eva_21k_1k_336px_psz14_ema_89p6.pt'
ARCH = dict(embed_dims=48, num_layers=2, num_heads=3, feedforward_channels=131)


def release_file(folder) -> str:
    """A small EVA-01 classifier in the official container (BEiT ``save_model``: ``model``,
    ``model_ema``, ``args`` as an argparse.Namespace), under the release's name."""
    torch.manual_seed(0)
    sd = {k: torch.randn_like(v) * 0.02
          for k, v in EVAViT(ARCH, img_size=56, patch_size=14, final_norm=False)
          .state_dict().items()}
    sd.update({'fc_norm.weight': torch.randn(48), 'fc_norm.bias': torch.randn(48),
               'head.weight': torch.randn(7, 48), 'head.bias': torch.randn(7)})
    ema = {k: v + 1 for k, v in sd.items()}
    path = osp.join(str(folder), RELEASE)
    torch.save(dict(model=sd, model_ema=ema, epoch=9,
                    args=argparse.Namespace(model='eva_g_patch14', input_size=336)), path)
    return path


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with ``Range: bytes=N-`` support (http.server has none); records each
    request's Range header; ``cut`` drops the connection after that many bytes, once."""
    requests, cut = [], None

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.translate_path(self.path)
        if not osp.isfile(path):
            self.send_error(404, 'Not Found')
            return
        data = open(path, 'rb').read()
        rng = self.headers.get('Range')
        type(self).requests.append(rng)
        start = int(rng.split('=')[1].rstrip('-')) if rng else 0
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header('Content-Range', f'bytes {start}-{len(data) - 1}/{len(data)}')
        self.send_header('Content-Length', str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if type(self).cut is not None:
            body, type(self).cut = body[:type(self).cut], None
        self.wfile.write(body)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / 'www'
    root.mkdir()
    RangeHandler.requests, RangeHandler.cut = [], None
    httpd = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(RangeHandler, directory=str(root)))
    # shutdown() waits for the loop to poll (every 0.5 s by default)
    thread = threading.Thread(target=httpd.serve_forever, kwargs=dict(poll_interval=0.01),
                              daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{httpd.server_address[1]}/'
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / 'cache'
    monkeypatch.setenv(hub.CACHE_ENV, str(folder))
    return folder


def test_download_converts_once_and_caches(server, cache, tmp_path):
    root, base = server
    src = release_file(root)
    info = get_model_info(NAME)._replace(weights_url=base + 'BAAI/' + RELEASE)
    os.makedirs(root / 'BAAI')
    os.replace(src, root / 'BAAI' / RELEASE)
    path = hub.pretrained_checkpoint(info, progress=False)
    assert path == str(cache / 'eva_21k_1k_336px_psz14_ema_89p6_mm.pth')
    assert sorted(os.listdir(cache)) == [RELEASE, osp.basename(path)]  # no .part left
    got = torch.load(path, weights_only=True)
    expected = convert_checkpoint(str(cache / RELEASE), format='eva01-cls')
    assert got['meta']['source_format'] == 'eva01-cls'
    assert got['meta']['weights'] == 'model_ema'  # the converter's EMA choice, unchanged
    assert got['state_dict'].keys() == expected['state_dict'].keys()
    for k, v in expected['state_dict'].items():
        assert torch.equal(got['state_dict'][k], v), k
    # the second call neither downloads nor converts again
    mtime = os.path.getmtime(path)
    assert hub.pretrained_checkpoint(info, progress=False) == path
    assert RangeHandler.requests == [None]
    assert os.path.getmtime(path) == mtime


def test_interrupted_download_resumes_with_a_range_request(server, cache):
    root, base = server
    size = osp.getsize(release_file(root))
    RangeHandler.cut = size // 3
    info = get_model_info(NAME)._replace(weights_url=base + RELEASE)
    with pytest.raises(hub.DownloadError, match=f'after {size // 3} of {size} bytes.*resume'):
        hub.pretrained_checkpoint(info, progress=False)
    assert osp.getsize(cache / (RELEASE + '.part')) == size // 3
    assert not (cache / RELEASE).exists()  # never a truncated file under the release name
    hub.pretrained_checkpoint(info, progress=False)
    assert RangeHandler.requests == [None, f'bytes={size // 3}-']
    assert (cache / RELEASE).read_bytes() == (root / RELEASE).read_bytes()


def test_offline_local_file_and_mirror_url(server, cache, tmp_path):
    root, base = server
    local = release_file(tmp_path)
    info = get_model_info(NAME)._replace(weights_url='http://127.0.0.1:9/unreachable/' + RELEASE)
    path = hub.pretrained_checkpoint(info, source=local)  # no request at all
    assert path == str(cache / 'eva_21k_1k_336px_psz14_ema_89p6_mm.pth')
    assert RangeHandler.requests == [] and not (cache / RELEASE).exists()
    os.remove(path)
    release_file(root)
    assert hub.pretrained_checkpoint(info, source=base, progress=False) == path  # mirror/
    assert RangeHandler.requests == [None]
    with pytest.raises(FileNotFoundError, match=f'not found: .*nope.pt \\(expected {RELEASE}'):
        hub.pretrained_checkpoint(get_model_info(NAME), source=str(tmp_path / 'nope.pt'))


def test_no_network_names_the_url_and_the_cache_path(cache):
    url = 'http://127.0.0.1:9/BAAI/EVA/resolve/main/' + RELEASE  # discard port: refused
    info = get_model_info(NAME)._replace(weights_url=url)
    with pytest.raises(hub.DownloadError) as e:
        hub.pretrained_checkpoint(info, progress=False)
    assert url in str(e.value) and str(cache / RELEASE) in str(e.value)


def test_http_error_names_the_url(server, cache):
    _, base = server
    info = get_model_info(NAME)._replace(weights_url=base + 'missing/' + RELEASE)
    with pytest.raises(hub.DownloadError, match=f'{base}missing/{RELEASE}: HTTP 404'):
        hub.pretrained_checkpoint(info, progress=False)


def test_default_cache_is_torch_hub(monkeypatch, tmp_path):
    monkeypatch.delenv(hub.CACHE_ENV, raising=False)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'th'))
    assert hub.cache_dir() == str(tmp_path / 'th' / 'hub' / 'checkpoints' / 'eva')


def test_every_released_entry_records_its_converter_format():
    """Each entry's Converter command is ``eva_to_mm.py SRC DST --format NAME`` with SRC the
    URL's file and NAME a registered format: what the download path runs."""
    known = set(format_names(aliases=True))
    for info in load_index().values():
        if not info.weights_url:
            continue
        options, out = hub.converter_argv(info)
        fmt = options[options.index('--format') + 1]
        assert fmt in known, (info.name, fmt)
        assert info.converter.split()[2] == info.weight_file, info.name
        assert out == osp.basename(info.converted_checkpoint), info.name
    bad = get_model_info(NAME)._replace(
        converter='python tools/model_converters/eva_to_mm.py a.pt b.pth')
    with pytest.raises(ValueError, match='--format NAME'):
        hub.converter_argv(bad)


# ------------------------------------------------------------- by name: get_model, the CLI
DIGITS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
                  'demo', 'eva-cls_vit-tiny-p14_1xb64-80e_digits.py')
TINY_ARCH = dict(embed_dims=96, num_layers=4, num_heads=3, feedforward_channels=384)


def tiny_release(folder, name='eva_tiny_digits.pt'):
    """The demo digits classifier's architecture as an EVA-01 release file (BEiT container,
    EMA weights = trained + 1, so that which one loaded is visible)."""
    torch.manual_seed(1)
    sd = {k: torch.randn_like(v) * 0.02 for k, v in EVAViT(
        TINY_ARCH, img_size=56, patch_size=14, final_norm=False).state_dict().items()}
    sd.update({'fc_norm.weight': torch.ones(96), 'fc_norm.bias': torch.zeros(96),
               'head.weight': torch.randn(10, 96) * 0.1, 'head.bias': torch.zeros(10)})
    ema = {k: v + 1 for k, v in sd.items()}
    path = osp.join(str(folder), name)
    torch.save(dict(model=sd, model_ema=ema, args=argparse.Namespace(model='tiny')), path)
    return path, ema


@pytest.fixture
def tiny_name(server, cache, monkeypatch):
    """A model-index name for the demo digits config whose release is on the local server."""
    from projects.eva.apis import model_index
    root, base = server
    _, ema = tiny_release(root)
    info = get_model_info(NAME)._replace(
        name='tiny-digits', config=DIGITS, weights_url=base + 'eva_tiny_digits.pt',
        converter='python tools/model_converters/eva_to_mm.py eva_tiny_digits.pt '
                  'checkpoints/eva/eva_tiny_digits_mm.pth --format eva01-cls')
    original = model_index.get_model_info
    monkeypatch.setattr(model_index, 'get_model_info',
                        lambda n: info if n == 'tiny-digits' else original(n))
    return info, ema


def test_get_model_pretrained_loads_the_released_weights(tiny_name, cache, one_thread):
    import projects.eva
    _, ema = tiny_name
    model = projects.eva.get_model('tiny-digits', pretrained=True, device='cpu')
    torch.testing.assert_close(model.backbone.patch_embed.proj.weight,
                               ema['patch_embed.proj.weight'], rtol=0, atol=0)
    torch.testing.assert_close(model.head.fc.weight, ema['head.weight'], rtol=0, atol=0)
    assert (cache / 'eva_tiny_digits_mm.pth').is_file()
    with pytest.raises(ValueError, match='not both'):
        projects.eva.get_model('tiny-digits', checkpoint='x.pth', pretrained=True)


def test_inference_cli_by_name(tiny_name, cache, tmp_path, one_thread):
    import sys
    sys.path.insert(0, osp.join(osp.dirname(DIGITS), '..', '..', 'tools'))
    import inference as cli
    from sklearn.datasets import images
    photo = osp.join(osp.dirname(images.__file__), 'china.jpg')
    recs = cli.main(['tiny-digits', photo, '--out-dir', str(tmp_path / 'o'), '--no-vis'])
    assert len(recs) == 1 and recs[0]['checkpoint'] == str(cache / 'eva_tiny_digits_mm.pth')
    assert recs[0]['config'] == DIGITS and 'warning' not in recs[0]
    assert RangeHandler.requests == [None]
    # offline: the official file as a local path
    os.remove(cache / 'eva_tiny_digits_mm.pth')
    local, _ = tiny_release(tmp_path)
    cli.main(['tiny-digits', photo, photo, '--weights', local, '--no-vis',
              '--out-dir', str(tmp_path / 'o2')])
    assert RangeHandler.requests == [None] and (cache / 'eva_tiny_digits_mm.pth').is_file()
    with pytest.raises(SystemExit, match='neither a config file nor a model name'):
        cli.main(['no-such-model', photo])
