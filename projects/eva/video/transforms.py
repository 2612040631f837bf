"""Video transforms of EVA-01's training pipeline that mmaction2 1.2.0 lacks or breaks.

mmaction2's ``ColorJitter`` adds a negative hue offset to a uint8 array, which numpy >= 2
rejects (OverflowError), and it has no probability; EVA-01 applies torchvision's
``ColorJitter(0.4, 0.4, 0.2, 0.1)`` with p = 0.8 and a grey-scale with p = 0.2.
"""
import random
import numpy as np
import torch
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform


@TRANSFORMS.register_module()
class VideoRandomGrayscale(BaseTransform):
    """With probability ``prob`` turn every frame of a clip to grey (3 equal channels).

    EVA-01's ``GrayScale(p=0.2)``; luma weights of ITU-R 601 (PIL's ``convert('L')``).
    Frames are RGB (mmaction2's decoders return RGB).
    """

    def __init__(self, prob: float = 0.2):
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if random.random() >= self.prob:
            return results
        out = []
        for img in results['imgs']:
            if img.ndim != 3 or img.shape[-1] != 3:
                raise ValueError(f'VideoRandomGrayscale expects RGB frames (H, W, 3), got '
                                 f'{img.shape}')
            grey = img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
            if np.issubdtype(img.dtype, np.integer):
                grey = np.clip(np.round(grey), 0, 255)
            out.append(np.repeat(grey[..., None], 3, axis=-1).astype(img.dtype))
        results['imgs'] = out
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob})'


@TRANSFORMS.register_module()
class VideoColorJitter(BaseTransform):
    """With probability ``prob`` jitter brightness, contrast, saturation and hue (torchvision's
    ``ColorJitter``, random order), the same draw for every frame of the clip.

    EVA-01: ``ColorJitter(p=0.8)`` with brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1.
    (EVA-01 draws new factors for each frame; one draw per clip keeps the clip consistent.)
    """

    def __init__(self, prob: float = 0.8, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.2, hue: float = 0.1):
        from torchvision.transforms import ColorJitter
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob
        self.jitter = ColorJitter(brightness, contrast, saturation, hue)

    def transform(self, results: dict) -> dict:
        if random.random() >= self.prob:
            return results
        import torchvision.transforms.functional as TF
        imgs = results['imgs']
        if any(img.ndim != 3 or img.shape[-1] != 3 or img.dtype != np.uint8 for img in imgs):
            raise ValueError('VideoColorJitter expects uint8 RGB frames (H, W, 3)')
        clip = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2)  # (T, 3, H, W)
        j = self.jitter
        order, b, c, s, h = j.get_params(j.brightness, j.contrast, j.saturation, j.hue)
        for fn in order.tolist():
            if fn == 0 and b is not None:
                clip = TF.adjust_brightness(clip, b)
            elif fn == 1 and c is not None:
                clip = TF.adjust_contrast(clip, c)
            elif fn == 2 and s is not None:
                clip = TF.adjust_saturation(clip, s)
            elif fn == 3 and h is not None:
                clip = TF.adjust_hue(clip, h)
        results['imgs'] = list(clip.permute(0, 2, 3, 1).contiguous().numpy())
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob}, {self.jitter})'
