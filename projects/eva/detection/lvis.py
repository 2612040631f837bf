"""LVIS helpers: annotation files for EVA-01's LVIS
experiments, and a command line to write them.

    python -m projects.eva.detection.lvis cat-info  lvis_v1_train.json  lvis_v1_train_cat_info.json
    python -m projects.eva.detection.lvis cocofy    lvis_v1_val.json    lvis_v1_val_cocofied.json
    python -m projects.eva.detection.lvis subset    lvis_v1_val.json    instances_val2017.json  lvis_v1_val_5k.json

* ``cat-info``: per-class image counts (small file) for the federated loss.
* ``cocofy``: LVIS annotations of the 80 COCO classes only, with COCO category ids, so a
  COCO-trained detector is scored with the LVIS protocol on LVIS's denser labels (EVA-01
  ``cascade_mask_rcnn_vitdet_eva_1536_lvis_annotation.py``, ``lvis_v1_val_cocofied``).
* ``subset``: LVIS annotations restricted to the images of another json (LVIS val images
  that are COCO val2017 images: the "val-5K" split, on which COCO and LVIS models can be
  compared on the same pictures).
"""
import argparse
import json
from collections import Counter
from typing import Dict

# COCO category id -> WordNet synset of the matching LVIS category (LVIS's own
# coco_to_synset mapping); "tv" is television_receiver, "hot dog" frank, "potted plant" pot...
COCO_ID_TO_SYNSET: Dict[int, str] = {
    1: 'person.n.01', 2: 'bicycle.n.01', 3: 'car.n.01', 4: 'motorcycle.n.01',
    5: 'airplane.n.01', 6: 'bus.n.01', 7: 'train.n.01', 8: 'truck.n.01', 9: 'boat.n.01',
    10: 'traffic_light.n.01', 11: 'fireplug.n.01', 13: 'stop_sign.n.01',
    14: 'parking_meter.n.01', 15: 'bench.n.01', 16: 'bird.n.01', 17: 'cat.n.01',
    18: 'dog.n.01', 19: 'horse.n.01', 20: 'sheep.n.01', 21: 'beef.n.01', 22: 'elephant.n.01',
    23: 'bear.n.01', 24: 'zebra.n.01', 25: 'giraffe.n.01', 27: 'backpack.n.01',
    28: 'umbrella.n.01', 31: 'bag.n.04', 32: 'necktie.n.01', 33: 'bag.n.06',
    34: 'frisbee.n.01', 35: 'ski.n.01', 36: 'snowboard.n.01', 37: 'ball.n.06', 38: 'kite.n.03',
    39: 'baseball_bat.n.01', 40: 'baseball_glove.n.01', 41: 'skateboard.n.01',
    42: 'surfboard.n.01', 43: 'tennis_racket.n.01', 44: 'bottle.n.01', 46: 'wineglass.n.01',
    47: 'cup.n.01', 48: 'fork.n.01', 49: 'knife.n.01', 50: 'spoon.n.01', 51: 'bowl.n.03',
    52: 'banana.n.02', 53: 'apple.n.01', 54: 'sandwich.n.01', 55: 'orange.n.01',
    56: 'broccoli.n.01', 57: 'carrot.n.01', 58: 'frank.n.02', 59: 'pizza.n.01',
    60: 'doughnut.n.02', 61: 'cake.n.03', 62: 'chair.n.01', 63: 'sofa.n.01', 64: 'pot.n.04',
    65: 'bed.n.01', 67: 'dining_table.n.01', 70: 'toilet.n.02',
    72: 'television_receiver.n.01', 73: 'laptop.n.01', 74: 'mouse.n.04',
    75: 'remote_control.n.01', 76: 'computer_keyboard.n.01', 77: 'cellular_telephone.n.01',
    78: 'microwave.n.02', 79: 'oven.n.01', 80: 'toaster.n.02', 81: 'sink.n.01',
    82: 'electric_refrigerator.n.01', 84: 'book.n.01', 85: 'clock.n.01', 86: 'vase.n.01',
    87: 'scissors.n.01', 88: 'teddy.n.01', 89: 'hand_blower.n.01', 90: 'toothbrush.n.01',
}


def cat_info(lvis: dict) -> list:
    """``[{id, image_count}]`` per category (the federated-loss sampling weights)."""
    return [dict(id=c['id'], image_count=c['image_count'], name=c.get('name'))
            for c in sorted(lvis['categories'], key=lambda c: c['id'])]


def cocofy(lvis: dict) -> dict:
    """LVIS restricted to the COCO classes, renumbered with COCO ids (see module doc)."""
    if len(COCO_ID_TO_SYNSET) != 80:
        raise AssertionError('the COCO -> LVIS synset table must have 80 entries')
    to_coco = {s: cid for cid, s in COCO_ID_TO_SYNSET.items()}
    lvis_to_coco = {c['id']: to_coco[c['synset']] for c in lvis['categories']
                    if c.get('synset') in to_coco}
    if not lvis_to_coco:
        raise ValueError('no LVIS category has a COCO synset: is this an LVIS json?')
    used = Counter()
    anns = []
    for ann in lvis['annotations']:
        if ann['category_id'] in lvis_to_coco:
            anns.append(dict(ann, category_id=lvis_to_coco[ann['category_id']],
                             id=len(anns) + 1))
            used[anns[-1]['category_id']] += 1
    images = []
    for img in lvis['images']:
        img = dict(img)
        for key in ('not_exhaustive_category_ids', 'neg_category_ids'):
            img[key] = [lvis_to_coco[c] for c in img.get(key, []) if c in lvis_to_coco]
            used.update(img[key])
        images.append(img)
    cats = [dict(c, id=lvis_to_coco[c['id']]) for c in lvis['categories']
            if c['id'] in lvis_to_coco and lvis_to_coco[c['id']] in used]
    out = {k: v for k, v in lvis.items() if k not in ('annotations', 'images', 'categories')}
    return dict(out, images=images, annotations=anns,
                categories=sorted(cats, key=lambda c: c['id']))


def subset(lvis: dict, other: dict) -> dict:
    """LVIS restricted to the images whose ids appear in ``other`` (e.g. COCO val2017)."""
    keep = {img['id'] for img in other['images']}
    images = [img for img in lvis['images'] if img['id'] in keep]
    if not images:
        raise ValueError('the two annotation files share no image id')
    anns = [a for a in lvis['annotations'] if a['image_id'] in keep]
    return dict(lvis, images=images, annotations=anns)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('command', choices=('cat-info', 'cocofy', 'subset'))
    parser.add_argument('inputs', nargs='+', help='input json(s) then the output json')
    args = parser.parse_args(argv)
    need = 3 if args.command == 'subset' else 2
    if len(args.inputs) != need:
        parser.error(f'{args.command} takes {need} paths, got {len(args.inputs)}')
    loaded = []
    for path in args.inputs[:-1]:
        with open(path) as f:
            loaded.append(json.load(f))
    fn = dict(**{'cat-info': cat_info}, cocofy=cocofy, subset=subset)[args.command]
    with open(args.inputs[-1], 'w') as f:
        json.dump(fn(*loaded), f)
    print(f'wrote {args.inputs[-1]}')


if __name__ == '__main__':
    main()
