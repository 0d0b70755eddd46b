set(SFA_KERNEL_SOURCES standard.cu standard_softmax.cu standard_pointers.cu)
set(SFA_KERNEL_LIBS CUDA::cublas)
