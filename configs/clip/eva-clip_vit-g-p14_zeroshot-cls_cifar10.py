# EVA-CLIP zero-shot CIFAR-10 test (10k, 32 px upsampled to 224 bicubic), with OpenAI's 18
# CIFAR prompts (CLIP_benchmark). Layout: data/cifar10/cifar-10-batches-py/
_base_ = './_base_/eva-clip_vit-g-p14_zeroshot.py'
model = dict(classnames='cifar10', templates='openai_cifar')
test_dataloader = dict(dataset=dict(
    type='CIFAR10', data_root='data/cifar10', split='test',
    pipeline=_base_.image_pipeline[1:]))  # the arrays need no loading
