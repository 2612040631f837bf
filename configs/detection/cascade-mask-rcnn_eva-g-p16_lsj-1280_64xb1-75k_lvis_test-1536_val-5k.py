# The LVIS model on "LVIS val-5K": the LVIS v1 val images that are COCO val2017 images, so
# LVIS and COCO results can be compared on the same pictures (paper Table 8b). Build once:
#   python -m projects.eva.detection.lvis subset data/lvis_v1/annotations/lvis_v1_val.json \
#       data/coco/annotations/instances_val2017.json data/lvis_v1/annotations/lvis_v1_val_5k.json
_base_ = './cascade-mask-rcnn_eva-g-p16_lsj-1280_64xb1-75k_lvis_test-1536.py'

ann = 'data/lvis_v1/annotations/lvis_v1_val_5k.json'
val_dataloader = dict(dataset=dict(ann_file='annotations/lvis_v1_val_5k.json'))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=ann)
test_evaluator = val_evaluator
