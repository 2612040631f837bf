# The COCO model scored with the LVIS protocol on LVIS's annotations of the 80 COCO classes
# (EVA-01 cascade_mask_rcnn_vitdet_eva_1536_lvis_annotation.py; the COCO-vs-LVIS study of the
# paper's Table 8b). Build the annotation file once:
#   python -m projects.eva.detection.lvis cocofy data/lvis_v1/annotations/lvis_v1_val.json \
#       data/lvis_v1/annotations/lvis_v1_val_cocofied.json
# Images come from COCO train2017 + val2017 (LVIS file names follow coco_url).
_base_ = './cascade-mask-rcnn_eva-g-p16_lsj-1280_64xb1-45k_coco-det_test-1536.py'

lvis_root = 'data/lvis_v1/'
cocofied = lvis_root + 'annotations/lvis_v1_val_cocofied.json'
val_dataloader = dict(dataset=dict(
    _delete_=True, type='CheckedLVISV1Dataset', data_root=lvis_root, ann_file=cocofied,
    on_bad_annotation={{_base_.on_bad_annotation}},
    data_prefix=dict(img=''), test_mode=True,
    metainfo=dict(classes=('person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
                           'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
                           'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep',
                           'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack',
                           'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis',
                           'snowboard', 'sports ball', 'kite', 'baseball bat',
                           'baseball glove', 'skateboard', 'surfboard', 'tennis racket',
                           'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl',
                           'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
                           'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch',
                           'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop',
                           'mouse', 'remote', 'keyboard', 'cell phone', 'microwave', 'oven',
                           'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase',
                           'scissors', 'teddy bear', 'hair drier', 'toothbrush')),
    pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='EVALVISMetric', ann_file=cocofied,
                     metric=['bbox', 'segm'], max_dets_per_image=300)
test_evaluator = val_evaluator
