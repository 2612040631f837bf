"""Small generated datasets in the layouts of docs/custom_data.md, for the guide's CPU
variants (``configs/custom/*_cpu-tiny.py``)::

    python -m projects.eva.demo.guide_data classification data/guide_classification
    python -m projects.eva.demo.guide_data detection data/guide_coco
    python -m projects.eva.demo.guide_data segmentation data/guide_segmentation
    python -m projects.eva.demo.guide_data video data/guide_video

classification: scikit-learn's digits as ``{train,val}/<digit>/*.png`` class folders;
detection: coloured shapes with polygon masks, ``annotations/instances_{train,val}.json`` +
``{train,val}/*.png`` (COCO); segmentation: shape label maps, ``images/`` +
``annotations/{training,validation}`` (ADE20K: 0 = unlabelled, 1..3 = circle, square,
triangle); video: clips of a shape moving left / right / up / down, ``videos/{train,val}/*.mp4``
+ ``{train,val}_list_videos.txt`` (mmaction2's VideoDataset lists).
"""
import argparse
import os.path as osp

from .synthetic import make_digits_folders
from .synthetic_detection import make_coco_instances
from .synthetic_segmentation import make_segmentation_shapes
from .synthetic_video import make_moving_shapes

TASKS = ('classification', 'detection', 'segmentation', 'video')


def make(task: str, root: str) -> str:
    if task == 'classification':
        return make_digits_folders(root, size=56)
    if task == 'detection':
        for split, num, seed in (('train', 64, 0), ('val', 16, 1)):
            make_coco_instances(osp.join(root, ''), split, num=num, size=128, seed=seed,
                                max_shapes=2, radius=(0.15, 0.28))
        return root
    if task == 'segmentation':
        return make_segmentation_shapes(root, num_train=32, num_val=8, size=128, seed=0)
    if task == 'video':
        make_moving_shapes(root, {'train': 64, 'val': 8}, size=64, frames=16, seed=0)
        return root
    raise ValueError(f'unknown task {task!r}: one of {TASKS}')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('task', choices=TASKS)
    p.add_argument('root', help='folder to write the dataset into')
    args = p.parse_args(argv)
    print(make(args.task, args.root))


if __name__ == '__main__':
    main()
