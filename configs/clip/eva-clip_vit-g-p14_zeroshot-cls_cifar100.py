# EVA-CLIP zero-shot CIFAR-100 test (10k), OpenAI's 18 CIFAR prompts (CLIP_benchmark).
# Layout: data/cifar100/cifar-100-python/
_base_ = './_base_/eva-clip_vit-g-p14_zeroshot.py'
model = dict(classnames='cifar100', templates='openai_cifar')
test_dataloader = dict(dataset=dict(
    type='CIFAR100', data_root='data/cifar100', split='test',
    pipeline=_base_.image_pipeline[1:]))  # the arrays need no loading
