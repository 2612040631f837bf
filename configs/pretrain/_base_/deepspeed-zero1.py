# EVA-01's engine: DeepSpeed ZeRO stage 1 (AdamW states sharded over the ranks), fp16 with
# DeepSpeed's dynamic loss scale (2**16 initial, 500-step window, hysteresis 2, min scale 1),
# gradient clipping 3.0, 5e8 reduce/all-gather buckets (EVA-01 utils.create_ds_config),
# through mmengine's FlexibleRunner + DeepSpeedStrategy. A config adds this file to its
# _base_ list and replaces its optim_wrapper by a DeepSpeedOptimWrapper (DeepSpeed owns loss
# scaling and clipping; the wrapper only builds the optimizer and its parameter groups).
# The demo variant (configs/demo/*_deepspeed-zero1.py) trains through this same section.
runner_type = 'FlexibleRunner'
strategy = dict(
    type='DeepSpeedStrategy',
    # torch's AdamW is not one of DeepSpeed's own optimizers: ZeRO refuses it without this
    config=dict(zero_allow_untested_optimizer=True),
    fp16=dict(enabled=True, auto_cast=False, loss_scale=0, initial_scale_power=16,
              loss_scale_window=500, hysteresis=2, min_loss_scale=1),
    inputs_to_half=['inputs'],  # EVA-01 feeds the student .half() images
    zero_optimization=dict(stage=1, reduce_bucket_size=int(5e8),
                           allgather_bucket_size=int(5e8), overlap_comm=True,
                           contiguous_gradients=True, reduce_scatter=True),
    gradient_clipping=3.0,
)
