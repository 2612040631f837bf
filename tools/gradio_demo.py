"""A local web page for EVA: upload an image, pick a task, see the result (gradio).

    python tools/gradio_demo.py                      # the demo checkpoints (bash tools/demo.sh)
    python tools/gradio_demo.py --cls CONFIG CKPT --det CONFIG CKPT --seg CONFIG CKPT \\
        --clip CONFIG CKPT [--device cuda] [--host 127.0.0.1] [--port 7860]

Tasks: classify, zero-shot (EVA-CLIP with the labels typed in the page), detect, segment.
Each runs through ``projects.eva.apis`` (the upstream mmpretrain / mmdet / mmseg
inferencers, exactly what tools/inference.py uses); the page shows the drawn result and the
JSON record. Models are built on first use and cached. Nothing is fetched from the internet:
no analytics, no share link, system fonts only. ``--exit-after S`` stops the server after S
seconds (tests, unattended runs). As mmdet's ``projects/gradio_demo``, this lives outside
the library package, and gradio is imported only here.
"""
import argparse
import glob
import os
import os.path as osp
import sys
import tempfile
import threading

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

TASKS = {  # page label -> (flag, projects.eva.apis task, demo config, demo work dir)
    'classify': ('cls', 'classification', 'eva-cls_vit-tiny-p14_1xb64-80e_digits.py',
                 'classification'),
    'zero-shot': ('clip', 'zero-shot', 'eva-clip_vit-tiny-p8_1xb64-6e_shapes-captions.py',
                  'clip'),
    'detect': ('det', 'detection', 'eva-det_vit-tiny-p16_cascade-mask-rcnn_shapes-128.py',
               'detection'),
    'segment': ('seg', 'segmentation',
                'eva-mask2former_vit-tiny-adapter-p16_1xb8-160it_shapes-seg-128.py',
                'segmentation'),
}


def latest_checkpoint(work_dir: str):
    ckpts = glob.glob(osp.join(work_dir, '*.pth'))
    return max(ckpts, key=osp.getmtime) if ckpts else None


def resolve_models(args) -> dict:
    """``{task: (config, checkpoint)}``: the ``--cls/--clip/--det/--seg`` pairs, else (none
    given) the demo configs with the newest checkpoint of each ``--demo-dir`` stage."""
    given = {t: getattr(args, spec[0]) for t, spec in TASKS.items() if getattr(args, spec[0])}
    if given:
        for task, (cfg, ckpt) in given.items():
            for f in (cfg, ckpt):
                if not osp.isfile(f):
                    raise FileNotFoundError(f'--{TASKS[task][0]}: no such file {f}')
        return {t: tuple(v) for t, v in given.items()}
    models = {}
    for task, (_, _, cfg, stage) in TASKS.items():
        ckpt = latest_checkpoint(osp.join(args.demo_dir, stage))
        if ckpt:
            models[task] = (osp.join(ROOT, 'configs', 'demo', cfg), ckpt)
    if not models:
        raise FileNotFoundError(f'no demo checkpoints under {args.demo_dir}/<stage>/*.pth: run '
                                'bash tools/demo.sh first, or pass --cls/--clip/--det/--seg '
                                'CONFIG CHECKPOINT')
    return models


class Predictor:
    """Builds one inferencer per task on first use; turns an image path into
    (drawn RGB array, JSON record) with ``projects.eva.apis.run_inference``."""

    def __init__(self, models: dict, device: str = 'cpu', score_thr: float = 0.3):
        self.models, self.device, self.score_thr = models, device, score_thr
        self.inferencers = {}
        self.lock = threading.Lock()  # one prediction at a time: models are not thread-safe

    def inferencer(self, task: str):
        if task not in self.inferencers:
            from projects.eva.apis import build_inferencer
            cfg, ckpt = self.models[task]
            self.inferencers[task] = build_inferencer(cfg, ckpt, device=self.device)
        return self.inferencers[task]

    def set_labels(self, inferencer, labels: str):
        names = [s.strip() for s in (labels or '').replace('\n', ',').split(',') if s.strip()]
        if not names:
            return
        if names != list(inferencer.classes or []):
            inferencer.model.set_classes(names)
            inferencer.classes = names

    def __call__(self, image_path: str, task: str, labels: str = ''):
        import numpy as np
        from PIL import Image

        from projects.eva.apis import run_inference
        if not image_path:
            raise ValueError('upload an image first')
        if task not in self.models:
            raise ValueError(f'task {task!r} has no model here; available: {sorted(self.models)}')
        with self.lock, tempfile.TemporaryDirectory() as tmp:
            inf = self.inferencer(task)
            if task == 'zero-shot':
                self.set_labels(inf, labels)
            rec = run_inference(inf, [image_path], out_dir=tmp, progress=False,
                                score_thr=self.score_thr)[0]
            vis = np.asarray(Image.open(osp.join(tmp, 'vis', rec['visualization'])).convert('RGB'))
        rec = {k: v for k, v in rec.items() if k not in ('input', 'visualization', 'seg_map')}
        return vis, rec


def build_app(predictor: Predictor, default_labels: str = ''):
    import gradio as gr
    tasks = [t for t in TASKS if t in predictor.models]
    with gr.Blocks(title='EVA on OpenMMLab', analytics_enabled=False) as app:
        gr.Markdown('## EVA on OpenMMLab\nUpload an image, choose a task, press **Run**.')
        with gr.Row():
            with gr.Column():
                image = gr.Image(type='filepath', label='Image', sources=['upload'],
                                 elem_id='eva-input')
                task = gr.Radio(tasks, value=tasks[0], label='Task', elem_id='eva-task')
                labels = gr.Textbox(default_labels, label='Zero-shot labels (comma separated)',
                                    elem_id='eva-labels', visible='zero-shot' in tasks)
                run = gr.Button('Run', variant='primary', elem_id='eva-run')
            with gr.Column():
                result = gr.Image(label='Result', interactive=False, type='numpy',
                                  format='png', elem_id='eva-result')
                record = gr.JSON(label='Prediction', elem_id='eva-json')
        run.click(predictor, inputs=[image, task, labels], outputs=[result, record])
    return app


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    for task, (flag, *_rest) in TASKS.items():
        p.add_argument(f'--{flag}', nargs=2, metavar=('CONFIG', 'CHECKPOINT'),
                       help=f'model for "{task}"')
    p.add_argument('--demo-dir', default=osp.join(ROOT, 'work_dirs', 'demo'),
                   help='where bash tools/demo.sh wrote its checkpoints (used when no model '
                        'flag is given)')
    p.add_argument('--labels', default='',
                   help='initial zero-shot labels (default: the CLIP config\'s classnames)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--score-thr', type=float, default=0.3, help='boxes drawn above this score')
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=7860)
    p.add_argument('--exit-after', type=float, default=0,
                   help='stop the server after this many seconds (0: run until Ctrl-C)')
    return p.parse_args(argv)


def default_labels(models: dict) -> str:
    if 'zero-shot' not in models:
        return ''
    from mmengine.config import Config
    names = Config.fromfile(models['zero-shot'][0]).model.get('classnames')
    return ', '.join(names) if isinstance(names, (list, tuple)) else ''


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
    from projects.eva import compat
    compat.apply()
    models = resolve_models(args)
    for task, (cfg, ckpt) in models.items():
        print(f'[gradio_demo] {task}: {cfg} + {ckpt}', flush=True)
    import gradio as gr
    predictor = Predictor(models, args.device, args.score_thr)
    app = build_app(predictor, args.labels or default_labels(models))
    # system fonts: the default theme would load Google Fonts (no internet here)
    theme = gr.themes.Default(font=['sans-serif'], font_mono=['monospace'])
    app.launch(server_name=args.host, server_port=args.port, share=False, theme=theme,
               prevent_thread_lock=bool(args.exit_after), show_error=True, quiet=False)
    if args.exit_after:
        print(f'[gradio_demo] serving on http://{args.host}:{args.port} for '
              f'{args.exit_after:.0f} s', flush=True)
        threading.Event().wait(args.exit_after)
        app.close()
        print('[gradio_demo] stopped', flush=True)


if __name__ == '__main__':
    main()
