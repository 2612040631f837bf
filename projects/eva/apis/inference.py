"""Predictions on images and videos for every task, through the upstream inferencers.

``build_inferencer(config, checkpoint)`` builds the model through the one door
(:func:`projects.eva.apis.build.build_model`: the safe loader, the fit rule, the class names)
and returns the OpenMMLab inferencer of the config's task around it, unchanged: mmpretrain
``ImageClassificationInferencer`` (classification, and EVA-CLIP zero-shot with the label set
switched by ``EVACLIP.set_classes``), mmdet ``DetInferencer``, mmseg ``MMSegInferencer``, mmaction2
``ActionRecogInferencer``. What this module adds is only what those leave to the caller:
class names when the checkpoint carries none (a converted release has no ``dataset_meta``,
and the inferencers would then fall back to COCO / Cityscapes names), the registry scope set
per call (tasks side by side in one process), folder expansion, and
:func:`run_inference`, which writes one JSON and one picture per input with the same fields
and file names for every task (docs/inference.md lists them).
"""
import json
import os
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.config import Config
from mmengine.registry import DefaultScope

from .build import build_model, config_dataset_meta, load_config, task_of  # noqa: F401

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTS = ('.mp4', '.avi', '.mkv', '.mov', '.webm', '.mpeg', '.mpg')
TASKS = ('classification', 'zero-shot', 'detection', 'segmentation', 'video')  # inference
SEG_VIS_META = ('classes', 'palette', 'dataset_name')  # SegLocalVisualizer.set_dataset_meta


def inference_task(cfg: Config) -> str:
    """The config's task (:func:`projects.eva.apis.build.task_of`), if inference has one."""
    task = task_of(cfg)
    if task not in TASKS:
        raise ValueError(f'no inference task for this config (task {task!r}, model.type='
                         f'{cfg.model.get("type")!r}): MIM pretraining predicts teacher '
                         'features, not labels; use a classification, EVA-CLIP, detection, '
                         'segmentation or video config')
    return task


def read_lines(path: str) -> List[str]:
    if not osp.isfile(path):
        raise FileNotFoundError(f'file not found: {path}')
    with open(path) as f:
        lines = [line.strip() for line in f if line.strip() and not line.startswith('#')]
    if not lines:
        raise ValueError(f'{path}: no non-empty lines')
    return lines


def _prebuilt(inferencer_cls, model, cfg, device, **kwargs):
    """The mmengine-based upstream inferencer around a model built by the door: its
    ``_init_model`` (which would build the config's model again and load the weights with
    mmengine's loader) returns ``model``; pipeline, collate and visualizer are its own."""
    class Prebuilt(inferencer_cls):
        def _init_model(self, cfg, weights, device='cpu'):
            return model

    Prebuilt.__name__ = Prebuilt.__qualname__ = inferencer_cls.__name__
    return Prebuilt(model=cfg, weights=None, device=device, **kwargs)


def head_classes(model):
    """``(number of classes the model predicts, the head that says so)``, or ``(None, None)``
    (mmpretrain ``head``, mmaction2 ``cls_head``, mmseg ``decode_head``, mmdet ``bbox_head``
    or the last cascade stage's)."""
    for name in ('head', 'cls_head', 'decode_head', 'bbox_head', 'roi_head'):
        head = getattr(model, name, None)
        if name == 'roi_head' and head is not None:
            head, name = head.bbox_head, 'roi_head.bbox_head'
            if isinstance(head, (list, tuple)) or hasattr(head, '__getitem__'):
                head, name = head[-1], name + '[-1]'
        if head is not None and isinstance(getattr(head, 'num_classes', None), int):
            return head.num_classes, f'model.{name}.num_classes'
    return None, None


def _check_class_count(model, classes):
    """Names given for a model with a fixed head must match its class count."""
    count, where = head_classes(model)
    if count is not None and count != len(classes):
        raise ValueError(f'{len(classes)} class names given (--classes / --classes-file) '
                         f'but the model predicts {count} classes ({where} = {count}); give '
                         f'{count} names in the order of its labels')


def build_inferencer(config: Union[str, Config], checkpoint: Optional[str] = None,
                     device: Optional[str] = None, classes: Optional[Sequence[str]] = None,
                     templates: Optional[Sequence[str]] = None,
                     cfg_options: Optional[dict] = None):
    """The upstream inferencer for ``config``'s task with ``checkpoint`` loaded.

    Args:
        classes: class names (required for zero-shot unless the config sets
            ``model.classnames``; for other tasks they override the checkpoint's).
        templates: zero-shot prompt templates with ``{}`` (default: the config's).
    Returns:
        the inferencer; ``inferencer.eva_task`` says which task it is.
    """
    cfg = load_config(config, cfg_options)
    task = inference_task(cfg)
    scope = cfg.get('default_scope', 'mmpretrain')
    if device is None:
        import torch
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if task == 'zero-shot':
        if classes is None and cfg.model.get('classnames') is None:
            raise ValueError('zero-shot classification needs class names: pass classes= '
                             '(tools/inference.py --classes / --classes-file) or set '
                             'model.classnames in the config')
        if classes is not None:
            cfg.model.classnames = list(classes)
        if templates is not None:
            cfg.model.templates = list(templates)
    # the registry scope is set for this call only: a detection inferencer built earlier in
    # the process must not leave ``mmdet`` as the scope a classification pipeline is built in
    with DefaultScope.overwrite_default_scope(scope):
        model = build_model(cfg, checkpoint, device=device,
                            classes=None if task == 'zero-shot' else classes)
        if classes is not None and task != 'zero-shot':
            _check_class_count(model, classes)
        meta = model.dataset_meta
        if task in ('classification', 'zero-shot'):
            from mmpretrain.apis import ImageClassificationInferencer
            model._dataset_meta = meta
            inferencer = ImageClassificationInferencer(model=model, device=device)
            if task == 'zero-shot':
                from ..clip.zero_shot import get_classnames
                names = get_classnames(model.classnames)
            else:
                names = meta.get('classes')
            inferencer.classes = list(names) if names is not None else None
        elif task == 'detection':
            from mmdet.apis import DetInferencer
            inferencer = _prebuilt(DetInferencer, model, cfg, device, show_progress=False)
            inferencer.visualizer.dataset_meta = model.dataset_meta
        elif task == 'segmentation':
            from mmseg.apis import MMSegInferencer
            # MMSegInferencer drops a label loader named exactly 'LoadAnnotations'; ours is
            # registered under its own name
            pipeline = cfg.test_dataloader.dataset.pipeline
            pipeline[:] = [t for t in pipeline if t.get('type') != 'CheckedLoadAnnotations']
            inferencer = _prebuilt(MMSegInferencer, model, cfg, device)
            inferencer.show_progress = False
            if meta.get('palette') is None or len(meta['palette']) < len(meta.get('classes',
                                                                                 ())):
                rng = np.random.RandomState(42)  # fixed colours for names without a palette
                meta['palette'] = rng.randint(0, 255, size=(len(meta['classes']), 3)).tolist()
            inferencer.visualizer.set_dataset_meta(meta.get('classes'), meta.get('palette'))
            # MMSegInferencer.visualize passes model.dataset_meta as keywords to the
            # visualizer, which takes only these: a trained checkpoint's meta also has
            # label_map and reduce_zero_label (mmseg's BaseSegDataset adds them)
            model.dataset_meta = {k: meta[k] for k in SEG_VIS_META if k in meta}
        else:  # video
            from mmaction.apis.inferencers import ActionRecogInferencer
            inferencer = _prebuilt(ActionRecogInferencer, model, cfg, device)
            inferencer.show_progress = False
            if inferencer.visualizer is not None and meta.get('classes'):
                inferencer.visualizer.dataset_meta = dict(classes=list(meta['classes']))
    inferencer.eva_task = task
    inferencer.eva_scope = scope
    inferencer.eva_checkpoint = checkpoint  # None: run_inference marks every output
    if checkpoint is None:
        warnings.warn(f'checkpoint none: {NO_WEIGHTS}', stacklevel=2)
    return inferencer


# ---------------------------------------------------------------------- inputs
def collect_inputs(inputs: Union[str, Sequence[str]], task: str) -> List[str]:
    """Files as given, folders expanded (sorted, recursive) to their images, or to their
    videos for the video task."""
    exts = VIDEO_EXTS if task == 'video' else IMAGE_EXTS
    kind = 'video' if task == 'video' else 'image'
    if isinstance(inputs, str):
        inputs = [inputs]
    paths = []
    for item in inputs:
        if osp.isdir(item):
            found = sorted(osp.join(root, f) for root, _, files in os.walk(item)
                           for f in files if f.lower().endswith(exts))
            if not found:
                raise FileNotFoundError(f'no {kind} files ({", ".join(exts)}) under {item}')
            paths += found
        elif osp.isfile(item):
            if not item.lower().endswith(exts):
                raise ValueError(f'{item}: not a{"" if kind == "video" else "n"} {kind} file '
                                 f'for the {task} task (expected {", ".join(exts)})')
            paths.append(item)
        else:
            raise FileNotFoundError(f'input not found: {item}')
    if not paths:
        raise ValueError('no inputs given')
    return paths


def output_names(paths: Sequence[str]) -> List[str]:
    """One file stem per input: its own, with ``_<n>`` added where two inputs share it."""
    names, seen = [], {}
    for p in paths:
        stem = osp.splitext(osp.basename(p))[0]
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        names.append(stem if n == 0 else f'{stem}_{n}')
    return names


# ---------------------------------------------------------------------- predictions -> JSON
def _topk(scores, classes, k: int) -> List[dict]:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind='stable')[:k]
    return [dict(label=int(i), score=float(scores[i]),
                 **({'class': str(classes[i])} if classes is not None and i < len(classes)
                    else {}))
            for i in order]


def _class_record(ds, classes, topk: int) -> dict:
    scores = ds.pred_score.detach().float().cpu().numpy()
    top = _topk(scores, classes, topk)
    rec = dict(pred_label=top[0]['label'], pred_score=top[0]['score'], topk=top,
               num_classes=int(scores.shape[0]))
    if 'class' in top[0]:
        rec['pred_class'] = top[0]['class']
    return rec


def _det_record(ds, classes) -> dict:
    inst = ds.pred_instances
    labels = inst.labels.cpu().numpy().tolist()
    scores = inst.scores.float().cpu().numpy().tolist()
    bboxes = inst.bboxes.float().cpu().numpy().tolist() if 'bboxes' in inst else None
    masks = None
    if 'masks' in inst:
        from mmdet.structures.mask import encode_mask_results as encode
        masks = encode(inst.masks.cpu().numpy())
    out = []
    for i, (label, score) in enumerate(zip(labels, scores)):
        r = dict(label=int(label), score=float(score))
        if classes is not None and label < len(classes):
            r['class'] = str(classes[label])
        if bboxes is not None:
            r['bbox'] = [float(v) for v in bboxes[i]]
        if masks is not None:
            m = masks[i]
            counts = m['counts'].decode() if isinstance(m['counts'], bytes) else m['counts']
            r['mask'] = dict(size=[int(v) for v in m['size']], counts=counts)
        out.append(r)
    out.sort(key=lambda r: -r['score'])
    return dict(instances=out, num_instances=len(out))


def _seg_record(ds, classes, seg_file: str, preds_dir: str) -> dict:
    from PIL import Image
    seg = ds.pred_sem_seg.data[0].cpu().numpy()
    dtype = np.uint8 if seg.max(initial=0) < 256 else np.uint16
    Image.fromarray(seg.astype(dtype)).save(osp.join(preds_dir, seg_file))
    labels, counts = np.unique(seg, return_counts=True)
    present = []
    for label, count in sorted(zip(labels.tolist(), counts.tolist()), key=lambda t: -t[1]):
        r = dict(label=int(label), fraction=float(count / seg.size))
        if classes is not None and label < len(classes):
            r['class'] = str(classes[label])
        present.append(r)
    return dict(seg_map=seg_file, shape=[int(v) for v in seg.shape], classes_present=present)


# ---------------------------------------------------------------------- visualisation
def _read_rgb(path: str) -> np.ndarray:
    import mmcv
    img = mmcv.imread(path, channel_order='rgb')
    if img is None:
        raise ValueError(f'cannot read image {path}')
    return img


def _with_topk_labels(ds, k: int):
    """A copy whose ``pred_label`` lists the top-k classes: mmpretrain's visualizer draws
    every label in ``pred_label`` with its score (video: :mod:`.video_vis`)."""
    import torch
    vis_ds = ds.clone()
    scores = vis_ds.pred_score.detach().float().cpu()
    vis_ds.set_field(torch.argsort(scores, descending=True, stable=True)[:k], 'pred_label')
    return vis_ds


MIN_PICTURE = 224  # short edge at which the upstream visualizers' text is readable
NO_WEIGHTS = ("no trained weights: the config's initialisation (random unless its init_cfg "
              'loads some), so the predictions say nothing about the images')


def _readable_size(hw) -> Optional[int]:
    """The short edge to draw a small picture at (the upstream visualizers scale their text
    with the picture: on a 32 px image it was clipped and unreadable); None keeps it."""
    return MIN_PICTURE if min(hw) < MIN_PICTURE else None


def _visualize(inferencer, task, path, ds, classes, score_thr, opacity, topk=5):
    """The upstream visualizer's drawing of one prediction, as an RGB array (video: frames)."""
    if task == 'video':
        from .video_vis import draw_video
        return draw_video(inferencer.visualizer, path, ds, topk, classes)
    if task in ('classification', 'zero-shot'):
        ds = _with_topk_labels(ds, topk)
        vis = inferencer.visualizer
        if vis is None:
            from mmpretrain.visualization import UniversalVisualizer
            vis = inferencer.visualizer = UniversalVisualizer()
        image = _read_rgb(path)
        return vis.visualize_cls(image, ds, classes=classes, draw_gt=False, draw_pred=True,
                                 draw_score=True, resize=_readable_size(image.shape[:2]))
    image, ds = _dense_at_readable_size(path, ds, task)
    if task == 'detection':
        return inferencer.visualize([image], [ds], return_vis=True, pred_score_thr=score_thr)[0]
    return inferencer.visualize([image], [ds], return_vis=True, opacity=opacity)[0]


def _dense_at_readable_size(path: str, ds, task: str):
    """The picture (RGB: what mmdet's and mmseg's ``visualize`` draw an array on) and its
    prediction at :func:`_readable_size`: boxes scaled, masks and label maps resized nearest
    (a copy; the JSON keeps the prediction at the input's size)."""
    import mmcv
    import torch.nn.functional as F
    image = _read_rgb(path)
    short = _readable_size(image.shape[:2])
    if short is None:
        return image, ds
    scale = short / min(image.shape[:2])
    h, w = round(image.shape[0] * scale), round(image.shape[1] * scale)
    image = mmcv.imresize(image, (w, h))
    ds = ds.clone()

    def nearest(t):  # (N, H, W) -> (N, h, w), same dtype
        return F.interpolate(t[None].float(), size=(h, w), mode='nearest')[0].to(t.dtype)

    if task == 'detection':
        inst = ds.pred_instances
        inst.bboxes = inst.bboxes * scale
        if 'masks' in inst and len(inst):
            inst.masks = nearest(inst.masks)
    else:
        from mmengine.structures import PixelData
        ds.pred_sem_seg = PixelData(data=nearest(ds.pred_sem_seg.data))  # a new (h, w) map
    ds.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
    return image, ds


def _without_weights(inferencer) -> bool:
    """Built by :func:`build_inferencer` with checkpoint None (``none`` in the tool)."""
    return getattr(inferencer, 'eva_checkpoint', '') is None


def mark_no_weights(image: np.ndarray) -> np.ndarray:
    """A red band saying "NO TRAINED WEIGHTS" across the bottom of a picture (every frame of a
    video; the visualizers draw their labels at the top), so a picture from a ``none``
    checkpoint is not taken for a prediction."""
    import cv2
    image = np.array(image, dtype=np.uint8)  # a C-ordered copy: the caller's stays as it was
    frames = image if image.ndim == 4 else image[None]
    w = frames.shape[2]
    text, font = 'NO TRAINED WEIGHTS', cv2.FONT_HERSHEY_SIMPLEX
    scale = 0.5 * w / cv2.getTextSize(text, font, 1.0, 2)[0][0]
    (tw, th), base = cv2.getTextSize(text, font, scale, max(1, round(2 * scale)))
    band = th + base + 4
    origin = ((w - tw) // 2, frames.shape[1] - base - 2)
    for f in frames:
        f[-band:] = (200, 0, 0)  # RGB red
        cv2.putText(f, text, origin, font, scale, (255, 255, 255), max(1, round(2 * scale)),
                    cv2.LINE_AA)
    return image


def _save_vis(image: np.ndarray, path_no_ext: str, video_format: str = 'gif') -> str:
    from PIL import Image
    if image.ndim == 4:  # video frames -> animated GIF or .mp4
        from .video_vis import save_video
        return save_video(image, path_no_ext, video_format)
    out = path_no_ext + '.png'
    Image.fromarray(image.astype(np.uint8)).save(out)
    return out


def _predict(inferencer, task, batch: List[str]):
    """DataSamples for a batch of paths, through the inferencer's own preprocess/forward."""
    if task in ('classification', 'zero-shot'):
        # the inferencer's own preprocess + forward (its __call__ adds a progress bar per call)
        import torch
        data = next(iter(inferencer.preprocess(batch, batch_size=len(batch))))
        with torch.no_grad():
            return inferencer.forward(data)
    if task == 'detection':
        return inferencer(batch, batch_size=len(batch), return_datasamples=True,
                          no_save_vis=True, no_save_pred=True)['predictions']
    if task == 'segmentation':
        preds = inferencer(batch, batch_size=len(batch), return_datasamples=True)
        return preds if isinstance(preds, list) else [preds]
    return inferencer(batch, return_datasamples=True)['predictions']


def check_input(path: str, task: str) -> None:
    """Raise ValueError naming ``path`` and the cause when it cannot be read as the task's
    input (an empty file, a text file named .jpg, a truncated JPEG, a corrupt video)."""
    if osp.getsize(path) == 0:
        raise ValueError(f'{path}: empty file (0 bytes)')
    if task == 'video':
        import decord
        try:
            frames = len(decord.VideoReader(path))
        except Exception as e:  # decord raises its own DECORDError
            raise ValueError(f'{path}: cannot decode the video ({type(e).__name__}: '
                             f'{str(e).splitlines()[0] if str(e) else ""})') from None
        if frames == 0:
            raise ValueError(f'{path}: the video has no frames')
        return
    import mmcv
    with open(path, 'rb') as f:
        img = mmcv.imfrombytes(f.read())  # what the pipelines' LoadImageFromFile does
    if img is None:
        raise ValueError(f'{path}: cannot decode the image (not an image, or truncated)')


def _predict_each(inferencer, task: str, batch: List[str]) -> List[Union[object, Exception]]:
    """A DataSample or the exception per path: the batch at once, and one by one when it
    fails, so that one bad input does not take its batch with it."""
    try:
        samples = _predict(inferencer, task, batch)
        if len(samples) != len(batch):
            raise RuntimeError(f'{len(samples)} predictions for {len(batch)} inputs')
        return list(samples)
    except Exception as e:
        if len(batch) == 1:
            return [e]
    return [_predict_each(inferencer, task, [p])[0] for p in batch]


def _cause(path: str, e: Exception) -> str:
    """The failure of ``path``, naming it once."""
    msg = str(e) or type(e).__name__
    return msg if path in msg else f'{path}: {type(e).__name__}: {msg}'


def run_inference(inferencer, inputs: Union[str, Sequence[str]], out_dir: Optional[str] = None,
                  batch_size: int = 1, topk: int = 5, score_thr: float = 0.3,
                  opacity: float = 0.5, visualize: bool = True, progress: bool = True,
                  extra: Optional[dict] = None, video_format: str = 'gif',
                  fail_fast: bool = False) -> List[dict]:
    """Predict every input (files or folders) and, with ``out_dir``, write
    ``out_dir/preds/<name>.json`` and ``out_dir/vis/<name>.png`` (video: ``.gif``, or
    ``.mp4`` with ``video_format='mp4'``), and ``out_dir/summary.json``.

    Returns one record per input, in input order. An input that cannot be read or predicted
    gets ``{'input', 'task', 'error'}`` (the cause, naming the file) and the others go on;
    ``fail_fast=True`` raises at the first one instead. ``score_thr`` only filters what the
    detection picture draws; the JSON keeps every instance the model returned.
    """
    task = getattr(inferencer, 'eva_task', None)
    scope = getattr(inferencer, 'eva_scope', None)
    if task not in TASKS:
        raise ValueError('use an inferencer from build_inferencer() (it records the task)')
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    from .video_vis import VIDEO_FORMATS
    if video_format not in VIDEO_FORMATS:
        raise ValueError(f'video format must be one of {VIDEO_FORMATS}, got {video_format!r}')
    if _without_weights(inferencer):
        extra = dict(extra or {}, checkpoint=None, warning=NO_WEIGHTS)
    paths = collect_inputs(inputs, task)
    names = output_names(paths)
    classes = _classes_of(inferencer, task)
    preds_dir = vis_dir = None
    if out_dir:
        preds_dir, vis_dir = osp.join(out_dir, 'preds'), osp.join(out_dir, 'vis')
        os.makedirs(preds_dir, exist_ok=True)
        if visualize:
            os.makedirs(vis_dir, exist_ok=True)
    if task == 'video':
        batch_size = 1  # the mmaction2 inferencer predicts one video per call
    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(paths))
    by_path: Dict[int, dict] = {}

    def failed(i: int, e: Exception):
        if fail_fast:
            raise RuntimeError(_cause(paths[i], e)) from e
        by_path[i] = dict(input=paths[i], task=task, error=_cause(paths[i], e))
        if bar is not None:
            bar.update()

    for start in range(0, len(paths), batch_size):
        readable = []
        for i in range(start, min(start + batch_size, len(paths))):
            try:
                check_input(paths[i], task)
                readable.append(i)
            except (ValueError, OSError) as e:
                failed(i, e)
        with DefaultScope.overwrite_default_scope(scope):  # this task's registries
            results = _predict_each(inferencer, task, [paths[i] for i in readable]) \
                if readable else []
        for i, ds in zip(readable, results):
            if isinstance(ds, Exception):
                failed(i, ds)
                continue
            try:
                with DefaultScope.overwrite_default_scope(scope):
                    by_path[i] = _write_record(
                        inferencer, task, paths[i], names[i], ds, classes, extra, topk,
                        score_thr, opacity, video_format, preds_dir if out_dir else None,
                        vis_dir if out_dir and visualize else None)
            except Exception as e:
                failed(i, e)
                continue
            if bar is not None:
                bar.update()
    if bar is not None:
        print()
    records = [by_path[i] for i in range(len(paths))]
    if out_dir:
        with open(osp.join(out_dir, 'summary.json'), 'w') as f:
            json.dump(summary(records), f, indent=1)
    return records


def summary(records: Sequence[dict]) -> dict:
    """``{'done': n, 'failed': [{'input', 'error'}, ...]}`` of :func:`run_inference`'s records."""
    failed = [dict(input=r['input'], error=r['error']) for r in records if 'error' in r]
    return dict(done=len(records) - len(failed), failed=failed)


def _write_record(inferencer, task, path, name, ds, classes, extra, topk, score_thr, opacity,
                  video_format, preds_dir, vis_dir) -> dict:
    rec = dict(input=path, task=task)
    rec.update(extra or {})
    if task in ('classification', 'zero-shot', 'video'):
        rec.update(_class_record(ds, classes, topk))
    elif task == 'detection':
        rec.update(_det_record(ds, classes))
    elif preds_dir:
        rec.update(_seg_record(ds, classes, name + '_seg.png', preds_dir))
    else:
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            rec.update(_seg_record(ds, classes, name + '_seg.png', tmp))
        rec.pop('seg_map')
    if vis_dir:
        image = _visualize(inferencer, task, path, ds, classes, score_thr, opacity, topk)
        if _without_weights(inferencer):
            image = mark_no_weights(image)
        rec['visualization'] = osp.basename(_save_vis(image, osp.join(vis_dir, name),
                                                      video_format))
    if preds_dir:
        with open(osp.join(preds_dir, name + '.json'), 'w') as f:
            json.dump(rec, f, indent=1)
    return rec


def _classes_of(inferencer, task) -> Optional[List[str]]:
    if task in ('classification', 'zero-shot'):
        return inferencer.classes
    meta = getattr(inferencer.model, 'dataset_meta', None) or {}
    return list(meta['classes']) if meta.get('classes') else None


def inference(config, checkpoint, inputs, out_dir=None, device=None, batch_size=1,
              classes=None, templates=None, **kwargs) -> List[dict]:
    """``build_inferencer`` + ``run_inference`` in one call (what tools/inference.py does)."""
    inferencer = build_inferencer(config, checkpoint, device=device, classes=classes,
                                  templates=templates)
    return run_inference(inferencer, inputs, out_dir=out_dir, batch_size=batch_size, **kwargs)
