# Objects365 v2 boxes (365 classes, no masks), listed beside a detection recipe's bases (it
# defines only ``o365``): the recipe plugs the sets into its dataloaders with its own pipelines.
# Layout: data/Objects365/Obj365_v2/{train,val}/ and annotations/zhiyuan_objv2_{train,val}.json.
_root = 'data/Objects365/Obj365_v2/'
o365 = dict(
    root=_root,
    dataset=dict(type='CheckedObjects365V2Dataset', data_root=_root),
    train=dict(ann_file='annotations/zhiyuan_objv2_train.json', data_prefix=dict(img='train/')),
    val=dict(ann_file='annotations/zhiyuan_objv2_val.json', data_prefix=dict(img='val/')),
    metric=dict(ann_file=_root + 'annotations/zhiyuan_objv2_val.json', metric='bbox'))
del _root
