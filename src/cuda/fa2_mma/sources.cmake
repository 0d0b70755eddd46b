# fa2_mma: the dispatcher plus one translation unit per (head_dim, dtype, causal) instantiation.
# SFA_FA2_MMA_HEAD_DIMS builds a subset for development (e.g. -DSFA_FA2_MMA_HEAD_DIMS=128).
set(SFA_FA2_MMA_HEAD_DIMS "32;64;96;128;192;256" CACHE STRING
    "Head dims the fa2_mma kernel is instantiated for (a subset speeds up development builds)")
set(SFA_KERNEL_SOURCES fa2_mma.cu)

# The four instantiations (fp16 / bf16, with and without a mask) of `kernel` at `head_dim`.
macro(sfa_fa2_mma_instances kernel head_dim)
  foreach(dtype IN ITEMS fp16 bf16)
    foreach(suffix IN ITEMS "" "_causal")
      list(APPEND SFA_KERNEL_SOURCES instances/${kernel}_hdim${head_dim}_${dtype}${suffix}.cu)
    endforeach()
  endforeach()
endmacro()

foreach(head_dim IN LISTS SFA_FA2_MMA_HEAD_DIMS)
  sfa_fa2_mma_instances(fa2_mma ${head_dim})
  target_compile_definitions(sfa PRIVATE SFA_FA2_MMA_HDIM_${head_dim}=1)
  # The sm_90a binary also holds the wgmma kernel (fa2_mma_sm90.cuh) of head_dim 64, 128 and 256,
  # which compute capability 9.0 devices run in place of the mma.sync tiles.
  if("90a" IN_LIST SFA_CUDA_ARCHS AND head_dim MATCHES "^(64|128|256)$")
    sfa_fa2_mma_instances(fa2_wgmma ${head_dim})
    target_compile_definitions(sfa PRIVATE SFA_FA2_MMA_WGMMA_HDIM_${head_dim}=1)
  endif()
endforeach()
