"""EVA-CLIP: the EVA ViT as CLIP's image tower, trained contrastively, evaluated zero-shot.

Image tower: ``EVAViT`` (final LayerNorm, cls token) + ``clip_projection`` Linear(1408 -> 1024,
with bias), EVA-01's ``head(norm(x)[:, 0])``. Text tower: the open_clip text transformer
(width 768, 12 layers, 12 heads, 77 tokens, vocab 49408, plain GELU, causal mask, pooled at the
end-of-text token, ``text_projection`` 768 -> 1024). A learnable ``logit_scale`` (init
log(1/0.07), used clamped to 100) scales the symmetric InfoNCE loss; zero-shot logits use a
fixed 100 as in EVA-01's evaluation.
"""
import math
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.model import BaseModel, BaseModule
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..loader import unwrap_state_dict
from ..models.clip_transformer import CLIPTransformer, _read_clip_file
from .tokenizer import build_tokenizer
from .zero_shot import get_classnames, get_templates


@MODELS.register_module()
class EVACLIPTextTransformer(BaseModule):
    """open_clip ``TextTransformer`` with OpenAI/EVA-CLIP parameter names
    (``token_embedding``, ``positional_embedding``, ``transformer.resblocks.N``,
    ``ln_final``, ``text_projection``), so EVA-CLIP's ``text.*`` tensors load unchanged.

    Args:
        pretrained: an OpenAI/open_clip CLIP file whose text tower initialises this one
            (EVA-CLIP: OpenAI CLIP-L/14). Its ``text_projection`` is used only when the shape
            matches (CLIP-L's is 768 x 768, EVA-CLIP's 768 x 1024: it starts random).
    """

    def __init__(self, vocab_size: int = 49408, context_length: int = 77, width: int = 768,
                 layers: int = 12, heads: int = 12, embed_dim: int = 1024, act: str = 'gelu',
                 pretrained: Optional[str] = None, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.context_length = context_length
        self.vocab_size = vocab_size
        self.width, self.layers = width, layers
        self.pretrained = pretrained
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.zeros(context_length, width))
        self.transformer = CLIPTransformer(width, layers, heads, act)
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.zeros(width, embed_dim))

    @property
    def embed_dim(self) -> int:
        return self.text_projection.shape[1]

    def init_weights(self):
        """open_clip's text init, then the pretrained text tower if given."""
        w, n = self.width, self.layers
        attn_std, proj_std, fc_std = w ** -0.5, (w ** -0.5) * (2 * n) ** -0.5, (2 * w) ** -0.5
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        for blk in self.transformer.resblocks:
            nn.init.normal_(blk.attn.in_proj_weight, std=attn_std)
            nn.init.zeros_(blk.attn.in_proj_bias)
            nn.init.normal_(blk.attn.out_proj.weight, std=proj_std)
            nn.init.zeros_(blk.attn.out_proj.bias)
            nn.init.normal_(blk.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(blk.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=w ** -0.5)
        if self.pretrained:
            self.load_openai_text(self.pretrained)

    def load_openai_text(self, path: str):
        sd = unwrap_state_dict(_read_clip_file(path))
        sd = {k: v.float() for k, v in sd.items()
              if not k.startswith('visual.') and k not in ('logit_scale', 'input_resolution',
                                                          'context_length', 'vocab_size')}
        if 'token_embedding.weight' not in sd:
            raise KeyError(f'{path}: no text tower (token_embedding.weight) in this CLIP file')
        own = self.state_dict()
        skipped = [k for k in sd if k in own and sd[k].shape != own[k].shape]
        if any(k != 'text_projection' for k in skipped):
            raise ValueError(f'{path}: text tower shapes differ from the model: '
                             f'{[(k, tuple(sd[k].shape), tuple(own[k].shape)) for k in skipped]}')
        for k in skipped:
            sd.pop(k)
        missing, unexpected = self.load_state_dict(sd, strict=False)
        if unexpected or set(missing) - {'text_projection'}:
            raise KeyError(f'{path}: unexpected {unexpected}, missing {missing}')
        MMLogger.get_current_instance().info(
            f'text tower initialised from {path}; kept random: {missing}')

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids -> (B, embed_dim), the end-of-text token (the largest id)."""
        if tokens.ndim != 2 or tokens.shape[1] > self.context_length:
            raise ValueError(f'expected token ids (B, <= {self.context_length}), got '
                             f'{tuple(tokens.shape)}')
        x = self.token_embedding(tokens) + self.positional_embedding[:tokens.shape[1]]
        x = self.ln_final(self.transformer(x, causal=True))
        eot = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        return eot @ self.text_projection


def gather_features(x: torch.Tensor, with_grad: bool = False) -> torch.Tensor:
    """Concatenate ``x`` over all processes (rank order). Without ``with_grad`` the other
    ranks' rows are constants and this rank's own rows keep their graph (open_clip's default);
    with it, gradients flow back to every rank (``torch.distributed.nn.all_gather``)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    if with_grad:
        from torch.distributed.nn import all_gather
        return torch.cat(all_gather(x), dim=0)
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    parts[dist.get_rank()] = x
    return torch.cat(parts, dim=0)


def clip_contrastive_loss(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor,
                          with_grad: bool = False) -> torch.Tensor:
    """Symmetric InfoNCE over the global batch. ``image``/``text``: L2-normalised (B, D) local
    features; the positives are the matching rows of the gathered batch."""
    if image.shape != text.shape:
        raise ValueError(f'image features {tuple(image.shape)} and text features '
                         f'{tuple(text.shape)} must match')
    all_image, all_text = gather_features(image, with_grad), gather_features(text, with_grad)
    logits = scale * all_image.float() @ all_text.float().t()
    labels = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2


@MODELS.register_module()
class EVACLIP(BaseModel):
    """EVA-CLIP for contrastive training (``loss``) and zero-shot classification (``predict``).

    Args:
        vision_backbone: ``EVAViT`` config (``final_norm=True``, ``out_type='cls_token'``).
        text_backbone: ``EVACLIPTextTransformer`` config.
        tokenizer: ``EVACLIPTokenizer`` config (offline BPE). Its context length follows the
            text tower.
        classnames / templates: zero-shot classes (see :func:`.zero_shot.get_classnames`) and
            prompts (default: the 80 OpenAI ImageNet templates). Class embeddings are the mean
            of the normalised template embeddings, normalised again.
        zero_shot_scale: logits = scale * cos (EVA-01: 100).
        logit_scale_init / max_logit_scale: learnable temperature, log(1/0.07), capped at 100.
        gather_with_grad: see :func:`gather_features`.
    """

    def __init__(self,
                 vision_backbone: dict,
                 text_backbone: dict,
                 tokenizer: Optional[dict] = None,
                 classnames: Optional[Union[str, Sequence[str], dict]] = None,
                 templates: Union[str, Sequence] = 'openai_imagenet',
                 zero_shot_scale: float = 100.,
                 logit_scale_init: float = math.log(1 / 0.07),
                 max_logit_scale: float = 100.,
                 gather_with_grad: bool = False,
                 text_batch_size: int = 1024,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = {}
        if isinstance(data_preprocessor, dict):  # mmpretrain's registry, whatever the scope
            data_preprocessor = MODELS.build(
                dict(dict(type='ClsDataPreprocessor'), **data_preprocessor))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(vision_backbone)
        if getattr(self.backbone, 'out_type', None) != 'cls_token':
            raise ValueError('EVA-CLIP pools the normed cls token: build the EVAViT with '
                             "out_type='cls_token' and final_norm=True")
        self.text = MODELS.build(text_backbone)
        self.clip_projection = nn.Linear(self.backbone.embed_dims, self.text.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale_init)))
        self.max_logit_scale = max_logit_scale
        self.tokenizer = build_tokenizer(tokenizer)
        self.tokenizer.context_length = self.text.context_length
        if self.tokenizer.vocab_size > self.text.vocab_size:
            raise ValueError(f'tokenizer vocabulary ({self.tokenizer.vocab_size}) is larger than '
                             f'the text embedding ({self.text.vocab_size})')
        self.classnames = classnames
        self.templates = templates
        self.zero_shot_scale = zero_shot_scale
        self.gather_with_grad = gather_with_grad
        self.text_batch_size = text_batch_size
        self._classifier = None

    def init_weights(self):
        super().init_weights()
        cfgs = self.init_cfg if isinstance(self.init_cfg, (list, tuple)) else [self.init_cfg]
        if not any(isinstance(c, dict) and c.get('type') == 'Pretrained' for c in cfgs):
            std = self.backbone.embed_dims ** -0.5
            nn.init.normal_(self.clip_projection.weight, std=std)
            nn.init.zeros_(self.clip_projection.bias)

    # ------------------------------------------------------------------ features
    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        x = self.clip_projection(self.backbone(images)[-1])
        return F.normalize(x, dim=-1) if normalize else x

    def encode_text(self, texts: Union[Sequence[str], torch.Tensor],
                    normalize: bool = True) -> torch.Tensor:
        device = self.logit_scale.device
        tokens = texts if isinstance(texts, torch.Tensor) else self.tokenizer(list(texts))
        x = self.text(tokens.to(device))
        return F.normalize(x, dim=-1) if normalize else x

    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.encode_image(inputs)

    # ------------------------------------------------------------------ zero-shot
    @torch.no_grad()
    def build_classifier(self, classnames=None, templates=None) -> torch.Tensor:
        """(num_classes, D): per class the mean of its normalised prompt embeddings,
        normalised again (OpenAI's prompt ensembling)."""
        names = get_classnames(classnames if classnames is not None else self.classnames)
        prompts = get_templates(templates if templates is not None else self.templates)
        texts = [t(name) for name in names for t in prompts]
        feats = torch.cat([self.encode_text(texts[i:i + self.text_batch_size])
                           for i in range(0, len(texts), self.text_batch_size)])
        feats = feats.view(len(names), len(prompts), -1).mean(dim=1)
        return F.normalize(feats, dim=-1)

    def set_classes(self, classnames, templates=None):
        """Switch the zero-shot label set (the classifier is rebuilt on next predict)."""
        self.classnames = classnames
        if templates is not None:
            self.templates = templates
        self._classifier = None

    def zero_shot_logits(self, images: torch.Tensor) -> torch.Tensor:
        if self._classifier is None:
            if self.classnames is None:
                raise ValueError('zero-shot prediction needs classnames (model.classnames in '
                                 'the config, or model.set_classes())')
            was_training = self.training
            self.eval()
            self._classifier = self.build_classifier()
            self.train(was_training)
        image = self.encode_image(images)
        return self.zero_shot_scale * image @ self._classifier.to(image.dtype).t()

    # ------------------------------------------------------------------ mmengine API
    def forward(self, inputs: torch.Tensor, data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        if mode == 'tensor':
            return self.encode_image(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """Contrastive loss on image / caption pairs (``data_sample.text``)."""
        if not data_samples or any('text' not in ds for ds in data_samples):
            raise KeyError('contrastive training needs a caption per image: pack "text" with '
                           "PackInputs(algorithm_keys=['text'])")
        self._classifier = None  # the text tower changes: rebuild before the next eval
        image = self.encode_image(inputs)
        text = self.encode_text([ds.text for ds in data_samples])
        scale = self.logit_scale.exp().clamp(max=self.max_logit_scale)
        loss = clip_contrastive_loss(image, text, scale, self.gather_with_grad)
        return dict(loss=loss, logit_scale=scale.detach())

    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None) -> List[DataSample]:
        scores = F.softmax(self.zero_shot_logits(inputs).detach().float(), dim=-1)
        labels = scores.argmax(dim=-1)
        out = []
        for i in range(scores.shape[0]):
            src = data_samples[i] if data_samples is not None else None
            # keep img_path & co., as mmpretrain's classifiers do (DumpResults, inferencers)
            ds = DataSample(metainfo=src.metainfo) if src is not None else DataSample()
            if src is not None and 'gt_label' in src:
                ds.set_gt_label(src.gt_label)
            out.append(ds.set_pred_score(scores[i]).set_pred_label(labels[i]))
        return out
