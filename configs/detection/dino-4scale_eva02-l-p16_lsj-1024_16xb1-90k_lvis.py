# DINO with EVA-02-L on LVIS v1: the EVA-02-L COCO DINO recipe (no LVIS dino_eva run was
# released by detrex: this config has no published number) with the LVIS data of the cascade
# LVIS configs -- 1203 classes, repeat-factor sampling (threshold 0.001), 300 detections per
# image, LVIS box AP -- and the IN-21K MIM weights the EVA-02 LVIS models start from (no COCO
# images in their pretraining). DINO's sigmoid focal loss has no federated variant here.
_base_ = './dino-4scale_eva02-l-p16_lsj-1024_16xb1-90k_coco.py'

lvis_root = 'data/lvis_v1/'
model = dict(
    backbone=dict(init_cfg=dict(checkpoint='checkpoints/eva02/eva02_L_pt_in21k_p14to16_mm.pth')),
    bbox_head=dict(num_classes=1203), test_cfg=dict(max_per_img=300))
train_dataloader = dict(dataset=dict(
    _delete_=True, type='ClassBalancedDataset', oversample_thr=1e-3,
    dataset=dict(type='CheckedLVISV1Dataset', data_root=lvis_root,
                 ann_file='annotations/lvis_v1_train.json', data_prefix=dict(img=''),
                 on_bad_annotation={{_base_.on_bad_annotation}},
                 filter_cfg=dict(filter_empty_gt=True, min_size=32),
                 pipeline={{_base_.train_pipeline}})))
val_dataloader = dict(dataset=dict(
    type='CheckedLVISV1Dataset', data_root=lvis_root, ann_file='annotations/lvis_v1_val.json',
    data_prefix=dict(img='')))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='EVALVISMetric',
                     ann_file=lvis_root + 'annotations/lvis_v1_val.json', metric=['bbox'],
                     max_dets_per_image=300)
test_evaluator = val_evaluator
