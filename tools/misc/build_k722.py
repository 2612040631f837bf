"""Build EVA-01's Kinetics-722 annotation lists and the K722 -> K400/600/700 class mappings
from the standard Kinetics annotation CSVs.

    python tools/misc/build_k722.py \
        --k400 data/kinetics400/annotations --k600 data/kinetics600/annotations \
        --k700 data/kinetics700/annotations --out data/kinetics722 [--data-root data]

Each annotation folder holds DeepMind's ``train.csv`` / ``validate.csv`` (or mmaction2's
renamed ``kinetics_train.csv`` / ``kinetics_val.csv``), columns ``label,youtube_id,
time_start,time_end,...``. As EVA-01 (``video/notebooks/build_file_list.ipynb``):

* K722 classes = the sorted union of the K400/600/700 class names (spaces -> ``_``, as
  mmaction2 names the class folders); K400/600/700 keep their own sorted class lists, so
  their labels equal mmaction2's ``kinetics*_list_videos.txt`` labels.
* Every list drops repeated YouTube ids; each training list drops the ids of its validation
  set, and the K722 training list (K400 + K600 + K700 training videos, in that order) drops
  the ids of all three validation sets, so no validation video leaks into training.
* ``k722_to_k{400,600,700}_mapping.npy``: for target class ``i`` the K722 index of the same
  name (how the fine-tunes pick their rows of the K722 classifier).

Outputs in ``--out``: ``kinetics{722,400,600,700}_{train,val}_list_videos.txt`` (mmaction2
``VideoDataset`` lines ``<path> <label>``, paths relative to the data root, mmaction2's
layout ``kinetics400/videos_train/<class>/<youtube_id>_<start>_<end>.mp4``), the three
mappings and ``label_map_k{722,400,600,700}.txt``. With ``--data-root`` only videos found on
disk are listed (Kinetics videos disappear from YouTube over time).
"""
import argparse
import csv
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional

import numpy as np

DATASETS = ('k400', 'k600', 'k700')
CSV_NAMES = {'train': ('train.csv', 'kinetics_train.csv'),
             'val': ('validate.csv', 'val.csv', 'kinetics_val.csv')}
EVA01_NUM_CLASSES = 722


def class_folder(label: str) -> str:
    """mmaction2's class folder / label name: quotes removed, spaces -> underscores."""
    return label.replace('"', '').strip().replace(' ', '_')


def find_csv(folder: str, split: str) -> str:
    for name in CSV_NAMES[split]:
        path = osp.join(folder, name)
        if osp.isfile(path):
            return path
    raise FileNotFoundError(f'no {split} annotation CSV ({" / ".join(CSV_NAMES[split])}) in '
                            f'{folder}')


def read_csv(path: str) -> List[dict]:
    """Rows ``{label, youtube_id, start, end}`` of a Kinetics annotation CSV."""
    with open(path, newline='') as f:
        reader = csv.DictReader(f)
        need = {'label', 'youtube_id', 'time_start', 'time_end'}
        if not reader.fieldnames or not need <= set(reader.fieldnames):
            raise ValueError(f'{path}: expected columns {sorted(need)}, got {reader.fieldnames}')
        return [dict(label=class_folder(r['label']), youtube_id=r['youtube_id'],
                     start=int(float(r['time_start'])), end=int(float(r['time_end'])))
                for r in reader]


def video_path(dataset: str, split: str, row: dict) -> str:
    return (f'kinetics{dataset[1:]}/videos_{split}/{row["label"]}/'
            f'{row["youtube_id"]}_{row["start"]:06d}_{row["end"]:06d}.mp4')


def unique_ids(rows: List[dict], banned: Optional[set] = None) -> List[dict]:
    """Drop repeated YouTube ids (first kept) and ids in ``banned``."""
    seen, out = set(banned or ()), []
    for r in rows:
        if r['youtube_id'] not in seen:
            seen.add(r['youtube_id'])
            out.append(r)
    return out


def build_k722(annotations: Dict[str, str], out_dir: str,
               data_root: Optional[str] = None) -> dict:
    """Write the lists and mappings; returns counts and class lists (for logs and tests)."""
    rows = {(d, s): [dict(r, set=d) for r in read_csv(find_csv(annotations[d], s))]
            for d in DATASETS for s in ('train', 'val')}
    if data_root is not None:
        rows = {(d, s): [r for r in rs if osp.isfile(osp.join(data_root, video_path(d, s, r)))]
                for (d, s), rs in rows.items()}
    classes = {d: sorted({r['label'] for s in ('train', 'val') for r in rows[d, s]})
               for d in DATASETS}
    classes['k722'] = sorted(set().union(*classes.values()))
    index = {d: {c: i for i, c in enumerate(cs)} for d, cs in classes.items()}

    val_ids = {d: {r['youtube_id'] for r in rows[d, 'val']} for d in DATASETS}
    lists = OrderedDict()
    for d in DATASETS:
        lists[d, 'train'] = unique_ids(rows[d, 'train'], banned=val_ids[d])
        lists[d, 'val'] = unique_ids(rows[d, 'val'])
    lists['k722', 'train'] = unique_ids([r for d in DATASETS for r in rows[d, 'train']],
                                        banned=set().union(*val_ids.values()))
    lists['k722', 'val'] = unique_ids([r for d in DATASETS for r in rows[d, 'val']])

    os.makedirs(out_dir, exist_ok=True)
    stats = dict(classes={d: len(c) for d, c in classes.items()}, videos={})
    for (d, s), rs in lists.items():
        name = f'kinetics{d[1:]}_{s}_list_videos.txt'
        with open(osp.join(out_dir, name), 'w') as f:
            for r in rs:
                f.write(f'{video_path(r["set"], s, r)} {index[d][r["label"]]}\n')
        stats['videos'][f'{d}_{s}'] = len(rs)
    for d, cs in classes.items():
        with open(osp.join(out_dir, f'label_map_{d}.txt'), 'w') as f:
            f.write(''.join(c + '\n' for c in cs))
    mappings = {}
    for d in DATASETS:
        mappings[d] = np.array([index['k722'][c] for c in classes[d]], dtype=np.int64)
        np.save(osp.join(out_dir, f'k722_to_{d}_mapping.npy'), mappings[d])
    stats['mappings'] = mappings
    stats['class_names'] = classes
    return stats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for d in DATASETS:
        parser.add_argument(f'--{d}', required=True,
                            help=f'folder with the Kinetics-{d[1:]} train/validate CSVs')
    parser.add_argument('--out', default='data/kinetics722')
    parser.add_argument('--data-root', default=None,
                        help='list only videos present under this root (e.g. data)')
    args = parser.parse_args(argv)
    stats = build_k722({d: getattr(args, d) for d in DATASETS}, args.out, args.data_root)
    for d, n in stats['classes'].items():
        print(f'{d}: {n} classes, {stats["videos"][d + "_train"]} train / '
              f'{stats["videos"][d + "_val"]} val videos')
    if stats['classes']['k722'] != EVA01_NUM_CLASSES:
        print(f'warning: {stats["classes"]["k722"]} merged classes, EVA-01 had '
              f'{EVA01_NUM_CLASSES} (other Kinetics annotation versions name classes '
              'differently)')
    print(f'lists, label maps and k722_to_k*_mapping.npy written to {args.out}')


if __name__ == '__main__':
    main()
