# What every LVIS v1 recipe adds to its COCO model and LSJ data (EVA-01 and EVA-02 alike):
# 1203 classes with the sigmoid CE + federated loss (50 sampled classes, weights
# image_count^0.5), repeat-factor sampling (threshold 0.001), the LVIS metric at 300 detections.
# Listed beside a COCO recipe's bases (it defines only names they do not): the recipe plugs
# ``lvis`` into its own dataloaders and stage heads, with its own pipeline (see the LVIS
# recipes). Build the class-frequency file once:
#   python -m projects.eva.detection.lvis cat-info data/lvis_v1/annotations/lvis_v1_train.json \
#       data/lvis_v1/annotations/lvis_v1_train_cat_info.json
lvis_root = 'data/lvis_v1/'
fed_loss = dict(type='FederatedSigmoidCELoss', num_classes=1203, use_fed_loss=True,
                class_freq=lvis_root + 'annotations/lvis_v1_train_cat_info.json',
                freq_weight_power=0.5, num_fed_classes=50)
lvis = dict(
    train=dict(type='ClassBalancedDataset', oversample_thr=1e-3,
               dataset=dict(type='CheckedLVISV1Dataset', data_root=lvis_root,
                            ann_file='annotations/lvis_v1_train.json', data_prefix=dict(img=''),
                            filter_cfg=dict(filter_empty_gt=True, min_size=32))),
    val=dict(type='CheckedLVISV1Dataset', data_root=lvis_root,
             ann_file='annotations/lvis_v1_val.json', data_prefix=dict(img='')),
    metric=dict(type='EVALVISMetric', ann_file=lvis_root + 'annotations/lvis_v1_val.json',
                metric=['bbox', 'segm'], max_dets_per_image=300))
