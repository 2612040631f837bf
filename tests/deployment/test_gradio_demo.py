"""The web demo (tools/gradio_demo.py) in a real headless Chromium.

The server runs in its own process on 127.0.0.1 (a free port) with the demo classification
and segmentation configs and checkpoints of random weights (the page, not accuracy, is
tested here); selenium drives Debian's chromium through /usr/bin/chromedriver, uploads
scikit-learn's ``china.jpg``, runs two tasks and waits for the result picture. The server
also stops by itself (``--exit-after``). tools/setup_env.sh installs chromium as root; where
the browser cannot be had the test says why it is skipped.
"""
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs', 'demo')
CLS = osp.join(DEMO, 'eva-cls_vit-tiny-p14_1xb64-80e_digits.py')
SEG = osp.join(DEMO, 'eva-mask2former_vit-tiny-adapter-p16_1xb8-160it_shapes-seg-128.py')
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
CHROMEDRIVER = shutil.which('chromedriver') or '/usr/bin/chromedriver'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-dev-shm-usage', '--window-size=1400,1800']


def _browser_or_skip():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not osp.isfile(p)]
    if missing:
        pytest.skip(f'no browser: {missing} missing (tools/setup_env.sh installs Debian\'s '
                    'chromium and chromium-driver when it runs as root with apt-get)')
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip('selenium is not installed (requirements/tests.txt)')
    try:
        import importlib.util
        if importlib.util.find_spec('gradio') is None:
            raise ImportError
    except ImportError:
        pytest.skip('gradio is not installed (requirements/runtime.txt)')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _random_checkpoint(config: str, path: str):
    from projects.eva.apis.build import build_model
    torch.manual_seed(0)
    model = build_model(config)
    torch.save({'state_dict': model.state_dict()}, path)


def _wait_http(url: str, proc, timeout: float):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f'the demo server exited with {proc.returncode}')
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f'{url} did not answer within {timeout} s')


@pytest.mark.slow  # starts a fresh Python (imports the whole stack)
def test_gradio_import_is_lazy():
    """Importing the library or the demo module must not import gradio (slow: every test
    and tool would pay for it)."""
    code = ('import sys; sys.path.insert(0, %r); import projects.eva, projects.eva.deployment; '
            'import importlib.util as u; s = u.spec_from_file_location("d", %r); '
            'm = u.module_from_spec(s); s.loader.exec_module(m); '
            'print("gradio" in sys.modules)') % (ROOT, osp.join(ROOT, 'tools', 'gradio_demo.py'))
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == 'False'


@pytest.mark.slow  # starts a fresh Python (imports the whole stack)
def test_web_demo_in_headless_chromium(tmp_path):
    _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    import sklearn.datasets

    china = osp.join(osp.dirname(sklearn.datasets.__file__), 'images', 'china.jpg')
    cls_ckpt, seg_ckpt = str(tmp_path / 'cls.pth'), str(tmp_path / 'seg.pth')
    _random_checkpoint(CLS, cls_ckpt)
    _random_checkpoint(SEG, seg_ckpt)
    port = _free_port()
    log = open(tmp_path / 'server.log', 'w')
    env = dict(os.environ, OMP_NUM_THREADS='1', GRADIO_ANALYTICS_ENABLED='False')
    proc = subprocess.Popen(
        [sys.executable, osp.join(ROOT, 'tools', 'gradio_demo.py'), '--cls', CLS, cls_ckpt,
         '--seg', SEG, seg_ckpt, '--host', '127.0.0.1', '--port', str(port),
         '--exit-after', '900'], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    driver = None
    try:
        url = f'http://127.0.0.1:{port}/'
        _wait_http(url, proc, 600)
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for flag in FLAGS + [f'--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}']:
            opts.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        driver.get(url)
        wait = WebDriverWait(driver, 600)
        upload = wait.until(EC.presence_of_element_located(
            (By.CSS_SELECTOR, '#eva-input input[type=file]')))
        upload.send_keys(china)
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '#eva-input img')))

        def result_src(d):
            imgs = d.find_elements(By.CSS_SELECTOR, '#eva-result img')
            return imgs[0].get_attribute('src') if imgs and imgs[0].get_attribute('src') \
                else False

        def run_and_wait(previous=None):
            driver.find_element(By.CSS_SELECTOR, '#eva-run').click()
            return wait.until(lambda d: (result_src(d) or None) != previous and result_src(d))

        first = run_and_wait()
        record = driver.find_element(By.CSS_SELECTOR, '#eva-json').text
        assert 'classification' in record and 'pred_label' in record, record
        # the picture is a real PNG of the photo's size (the upload went through the model)
        size = driver.execute_script(
            'const i = document.querySelector("#eva-result img");'
            'return [i.naturalWidth, i.naturalHeight];')
        assert size == [640, 427], size

        driver.find_element(By.XPATH, '//*[@id="eva-task"]//label[contains(., "segment")]') \
            .click()
        second = run_and_wait(first)
        assert second != first
        wait.until(lambda d: 'segmentation' in d.find_element(By.CSS_SELECTOR, '#eva-json').text)
    finally:
        if driver is not None:
            driver.quit()
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        log.close()
    assert proc.returncode is not None


def test_zero_shot_uses_the_labels_typed_in(tmp_path, one_thread):
    """The page's zero-shot labels reach EVA-CLIP (no browser needed for this part)."""
    import importlib.util
    import sklearn.datasets
    spec = importlib.util.spec_from_file_location('gradio_demo',
                                                  osp.join(ROOT, 'tools', 'gradio_demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    clip = osp.join(DEMO, 'eva-clip_vit-tiny-p8_1xb64-6e_shapes-captions.py')
    ckpt = str(tmp_path / 'clip.pth')
    _random_checkpoint(clip, ckpt)
    predictor = demo.Predictor({'zero-shot': (clip, ckpt)})
    china = osp.join(osp.dirname(sklearn.datasets.__file__), 'images', 'china.jpg')
    vis, rec = predictor(china, 'zero-shot', 'a temple, a flower,  a dog\n')
    assert vis.shape == (427, 640, 3)
    assert rec['task'] == 'zero-shot' and rec['num_classes'] == 3
    assert {t['class'] for t in rec['topk']} == {'a temple', 'a flower', 'a dog'}
    _, rec = predictor(china, 'zero-shot', 'sky, sea')
    assert rec['num_classes'] == 2


def test_tasks_side_by_side_in_one_process(tmp_path, one_thread):
    """The web demo's predictor: detection, then classification, then zero-shot in one
    process. A detection request used to leave ``mmdet`` as the registry scope, and every
    classification / zero-shot request after it failed with ``KeyError: 'ResizeEdge is not in
    the mmdet::transform registry'``."""
    import importlib.util
    import sklearn.datasets
    spec = importlib.util.spec_from_file_location('gradio_demo_tasks',
                                                  osp.join(ROOT, 'tools', 'gradio_demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    det = osp.join(DEMO, 'eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py')
    clip = osp.join(DEMO, 'eva-clip_vit-tiny-p8_1xb64-6e_shapes-captions.py')
    models = {}
    for task, config in (('detect', det), ('classify', CLS), ('zero-shot', clip)):
        ckpt = str(tmp_path / f'{task}.pth')
        _random_checkpoint(config, ckpt)
        models[task] = (config, ckpt)
    predictor = demo.Predictor(models)
    china = osp.join(osp.dirname(sklearn.datasets.__file__), 'images', 'china.jpg')
    _, rec = predictor(china, 'detect')
    assert rec['task'] == 'detection' and 'instances' in rec
    _, rec = predictor(china, 'classify')
    assert rec['task'] == 'classification' and 'pred_label' in rec
    _, rec = predictor(china, 'zero-shot', 'a temple, a dog')
    assert rec['task'] == 'zero-shot' and rec['num_classes'] == 2


def test_detection_then_classification_inferencer_from_python(tmp_path, one_thread):
    """mmdet's own ``DetInferencer`` (which sets the default scope for the process), then a
    classification inferencer built by ``build_inferencer``."""
    import sklearn.datasets
    from mmdet.apis import DetInferencer

    from projects.eva.apis import build_inferencer, run_inference
    det = osp.join(DEMO, 'eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py')
    DetInferencer(model=det, weights=None, device='cpu', show_progress=False)
    ckpt = str(tmp_path / 'cls.pth')
    _random_checkpoint(CLS, ckpt)
    china = osp.join(osp.dirname(sklearn.datasets.__file__), 'images', 'china.jpg')
    rec = run_inference(build_inferencer(CLS, ckpt, device='cpu'), [china], progress=False)
    assert rec[0]['task'] == 'classification' and 'pred_label' in rec[0]
