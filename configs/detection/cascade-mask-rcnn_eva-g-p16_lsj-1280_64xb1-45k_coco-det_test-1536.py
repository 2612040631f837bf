# 1536 single-scale evaluation of the coco-det model (EVA-01 cascade_mask_rcnn_vitdet_eva_1536.py):
# test images resized to 1536 and padded to 1536x1536; the rel-pos tables keep their
# 1280-training shapes and the global ones are resized 159 -> 191 BEiT-style (geometric
# progression + cubic spline) at run time.
_base_ = './cascade-mask-rcnn_eva-g-p16_lsj-1280_64xb1-45k_coco-det.py'

image_size = 1536
load_from = None  # pass the converted checkpoint to tools/test.py
model = dict(
    data_preprocessor=dict(test_pad_size=(image_size, image_size)),
    backbone=dict(rel_pos_interp='beit'))
test_pipeline = {{_base_.lsj.mask1536.test}}
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
