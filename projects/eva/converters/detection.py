"""EVA-01 detectron2 (ViTDet Cascade Mask R-CNN) checkpoints -> our mmdet detector.

``eva_o365.pth``, ``eva_coco_det.pth``, ``eva_coco_seg.pth``, ``eva_lvis.pth`` hold
``{'model': state_dict, ...}`` with ``backbone.net.*`` (the ViT, already named like
``EVAViT``), ``backbone.simfp_{2,3,4,5}.*`` (pyramid), ``proposal_generator.rpn_head.*``,
``roi_heads.box_head.{k}.*`` / ``roi_heads.box_predictor.{k}.*`` (3 stages) and one
``roi_heads.mask_head.*``. mmdet's cascade has one mask head per stage: the single head is
copied into each (test-time averaging of identical heads gives the single head's masks).
``pixel_mean`` / ``pixel_std`` are checked against the config's ImageNet values and dropped.
The LVIS model (federated loss on) also saves ``roi_heads.box_predictor.{0,1,2}.
fed_loss_cls_weights``: see :func:`drop_fed_loss_weights`. Every other tensor must be
mapped: a key no rule covers is an error.
"""
import logging
import re
from typing import Dict, Optional

import torch

from . import drop_rope, register_format, require_mapped
from .backbone import eva01_vit_problem, eva02_vit_problem

logger = logging.getLogger(__name__)
FED_KEY = re.compile(r'^roi_heads\.box_predictor\.(\d)\.fed_loss_cls_weights$')
FED_REASON = ('federated-loss class weights (image_count ** 0.5, used only to sample the '
              'classes of the training loss): FederatedSigmoidCELoss computes its own from '
              'the config\'s class_freq, and that one wins when training')

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
NUM_STAGES = 3


def check_pixel_stats(key: str, value: torch.Tensor) -> bool:
    """detectron2 / detrex files carry ``pixel_mean`` / ``pixel_std`` buffers; the configs'
    data preprocessors use ImageNet's. True when ``key`` is one of them and agrees (it is then
    dropped), an error naming the values when it differs, False for any other key."""
    if key not in ('pixel_mean', 'pixel_std'):
        return False
    expected = IMAGENET_MEAN if key == 'pixel_mean' else IMAGENET_STD
    if not torch.allclose(value.flatten().float(), torch.tensor(expected), atol=1e-2):
        raise ValueError(f'{key} = {value.flatten().tolist()} differs from the configs\' '
                         f'ImageNet {expected}: edit data_preprocessor accordingly')
    return True

# detectron2 SimpleFeaturePyramid: simfp_<log2 stride>.<index> -> our module per scale level
_PYRAMID = {
    2: {0: 'resamplers.0.0', 1: 'resamplers.0.1', 3: 'resamplers.0.3', 4: 'lateral_convs.0',
        5: 'fpn_convs.0'},
    3: {0: 'resamplers.1.0', 1: 'lateral_convs.1', 2: 'fpn_convs.1'},
    4: {0: 'lateral_convs.2', 1: 'fpn_convs.2'},
    5: {1: 'lateral_convs.3', 2: 'fpn_convs.3'},
}


def _is_detectron2_vitdet(sd: Dict[str, torch.Tensor]) -> bool:
    """detectron2 ViTDet whose ``backbone.net`` is an EVA-01 ViT (with ViTDet's rel-pos)."""
    return any(k.startswith('roi_heads.') for k in sd) and \
        eva01_vit_problem(sd, 'backbone.net.', extra_block_items=VITDET_BLOCK_ITEMS) is None


VITDET_BLOCK_ITEMS = ('attn.rel_pos_h', 'attn.rel_pos_w')


def drop_fed_loss_weights(sd: Dict[str, torch.Tensor], dropped: Dict[str, str],
                          class_counts=None, freq_weight_power: float = 0.5) -> None:
    """Check and drop the LVIS release's ``fed_loss_cls_weights`` buffers.

    They only steer which classes the federated training loss samples; at test time nothing
    reads them. Our ``FederatedSigmoidCELoss`` builds the same weights (``image_count **
    0.5``, classes sorted by id) from the config's ``class_freq`` file, and those win: the
    buffers are not loaded. With ``class_counts`` (per-class image counts, sorted by id: what
    ``tools/model_converters/eva_to_mm.py --fed-loss-class-freq`` reads from the cat-info or
    LVIS train json the config uses) they are compared to ours, and a disagreement is an
    error -- fine-tuning would sample classes differently from the official run. The counts
    are passed in: the converters read no annotation files (and import no task package).
    """
    weights = {int(FED_KEY.match(k)[1]): v for k, v in sd.items() if FED_KEY.match(k)}
    if not weights:
        return
    first = weights[min(weights)].float()
    for stage, w in weights.items():
        key = f'roi_heads.box_predictor.{stage}.fed_loss_cls_weights'
        cls_rows = sd.get(f'roi_heads.box_predictor.{stage}.cls_score.weight')
        if w.ndim != 1 or (cls_rows is not None and cls_rows.shape[0] != w.numel() + 1):
            raise ValueError(f'{key}: shape {tuple(w.shape)} does not fit a classifier of '
                             f'{None if cls_rows is None else cls_rows.shape[0]} logits (K + 1)')
        if not torch.equal(w.float(), first):
            raise ValueError(f'{key} differs from stage {min(weights)}\'s weights')
        dropped[key] = FED_REASON
        logger.warning('dropped %s: %s', key, FED_REASON)
    if class_counts is not None:
        ours = torch.as_tensor(list(class_counts), dtype=torch.float) ** freq_weight_power
        if ours.shape != first.shape or not torch.allclose(ours, first, rtol=1e-4):
            diff = 'shape' if ours.shape != first.shape else \
                f'max |diff| {(ours - first).abs().max().item():.4g}'
            raise ValueError(f'fed_loss_cls_weights of the checkpoint and image_count ** '
                             f'{freq_weight_power} from the given class counts disagree '
                             f'({diff}): the config\'s class_freq would win when training; '
                             'check the file')


def _conv_with_norm(dst: str, rest: str) -> str:
    """detectron2 ``Conv2d(norm=LN)``: ``weight``/``bias`` + ``norm.*`` -> ConvModule."""
    if rest.startswith('norm.'):
        return f'{dst}.ln.{rest[5:]}'
    return f'{dst}.conv.{rest}'


def _map_key(k: str, num_box_convs: int):
    """Target key(s) of one detectron2 key, or None when no rule applies."""
    if k.startswith('backbone.net.'):
        return ['backbone.' + k[len('backbone.net.'):]]
    m = re.match(r'^backbone\.simfp_(\d)\.(\d)\.(.+)$', k)
    if m:
        level, idx, rest = int(m[1]), int(m[2]), m[3]
        dst = _PYRAMID.get(level, {}).get(idx)
        if dst is None:
            return None
        if dst.startswith('resamplers'):
            return [f'neck.{dst}.{rest}']
        return ['neck.' + _conv_with_norm(dst, rest)]
    m = re.match(r'^proposal_generator\.rpn_head\.(.+)$', k)
    if m:
        rest = m[1]
        c = re.match(r'^conv\.(?:conv(\d+)\.)?(weight|bias)$', rest)
        if c:
            return [f'rpn_head.rpn_conv.{int(c[1] or 0)}.conv.{c[2]}']
        for src, dst in (('objectness_logits.', 'rpn_cls.'), ('anchor_deltas.', 'rpn_reg.')):
            if rest.startswith(src):
                return ['rpn_head.' + dst + rest[len(src):]]
        return None
    m = re.match(r'^roi_heads\.box_head\.(\d)\.(conv(\d+)|fc(\d+))\.(.+)$', k)
    if m:
        stage, rest = int(m[1]), m[5]
        if m[3]:
            return [f'roi_head.bbox_head.{stage}.' +
                    _conv_with_norm(f'shared_convs.{int(m[3]) - 1}', rest)]
        return [f'roi_head.bbox_head.{stage}.shared_fcs.{int(m[4]) - 1}.{rest}']
    m = re.match(r'^roi_heads\.box_predictor\.(\d)\.(cls_score|bbox_pred)\.(.+)$', k)
    if m:
        name = 'fc_cls' if m[2] == 'cls_score' else 'fc_reg'
        return [f'roi_head.bbox_head.{m[1]}.{name}.{m[3]}']
    m = re.match(r'^roi_heads\.mask_head\.(mask_fcn(\d+)|deconv|predictor)\.(.+)$', k)
    if m:
        if m[2]:
            dst = _conv_with_norm(f'convs.{int(m[2]) - 1}', m[3])
        else:
            dst = ('upsample.' if m[1] == 'deconv' else 'conv_logits.') + m[3]
        return [f'roi_head.mask_head.{s}.{dst}' for s in range(NUM_STAGES)]
    return None


@register_format('eva01-det', _is_detectron2_vitdet,
                 'detectron2 cascade: eva_o365.pth, eva_coco_det.pth, eva_coco_seg.pth, '
                 'eva_lvis.pth',
                 lambda sd: eva01_vit_problem(sd, 'backbone.net.',
                                              extra_block_items=VITDET_BLOCK_ITEMS)
                 if any(k.startswith('roi_heads.') for k in sd) else None)
def convert_eva01_detectron2(sd: Dict[str, torch.Tensor], patch_size=None,
                             dropped: Optional[Dict[str, str]] = None,
                             fed_loss_class_counts=None, **_) -> dict:
    """-> ``CascadeRCNN`` with ``EVAViT`` / ``SimpleFeaturePyramid`` / ``EVACascadeRoIHead``.

    ``fed_loss_class_counts``: check the LVIS release's federated weights against these
    per-class image counts (sorted by category id).
    """
    if patch_size not in (None, 16):
        raise ValueError('detection checkpoints are patch 16; do not pass another patch size')
    dropped = {} if dropped is None else dropped
    drop_fed_loss_weights(sd, dropped, fed_loss_class_counts)
    out, left = {}, []
    for k, v in sd.items():
        if k in dropped:
            continue
        if check_pixel_stats(k, v):
            continue
        targets = _map_key(k, 4)
        if targets is None:
            left.append(k)
            continue
        for t in targets:
            out[t] = v
    require_mapped('eva01-det', left)
    return out


def _is_detectron2_eva02(sd: Dict[str, torch.Tensor]) -> bool:
    """detectron2 ViTDet whose ``backbone.net`` is an official EVA-02 ViT (B/L blocks, RoPE
    tables ``rope_win`` / ``rope_glb``, no rel-pos)."""
    return any(k.startswith('roi_heads.') for k in sd) and \
        eva02_vit_problem(sd, 'backbone.net.') is None


@register_format('eva02-det', _is_detectron2_eva02,
                 'EVA-02 detectron2 cascade: eva02_{B,L}_coco_{bsl,sys}*.pth, '
                 'eva02_{B,L}_lvis_*.pth, eva02_L_*o365* (ema_state preferred)',
                 lambda sd: eva02_vit_problem(sd, 'backbone.net.')
                 if any(k.startswith('roi_heads.') for k in sd) and
                 'backbone.net.blocks.0.attn.qkv.weight' not in sd else None)
def convert_eva02_detectron2(sd: Dict[str, torch.Tensor], patch_size=None,
                             dropped: Optional[Dict[str, str]] = None, **options) -> dict:
    """-> the same detector as EVA-01's with an ``eva02-*`` ``EVAViT`` (no cls token, no
    final norm): the stored RoPE tables are dropped, the rest maps as EVA-01's (the neck and
    heads are EVA-01's ViTDet ones; the pos table keeps its cls slot, which the backbone
    drops at load)."""
    dropped = {} if dropped is None else dropped
    return convert_eva01_detectron2(drop_rope(sd, dropped), patch_size, dropped, **options)
