# decode_fast: split-KV decode for fp16/bf16 (GQA packing, paged KV). One split-kernel
# instantiation per (dtype, head_dim) file so builds parallelise.
set(SFA_KERNEL_SOURCES
  launch_decode_fast.cu
  combine_kernel.cu
  split_fp16_hd64.cu
  split_fp16_hd128.cu
  split_fp16_hd256.cu
  split_bf16_hd64.cu
  split_bf16_hd128.cu
  split_bf16_hd256.cu
)
