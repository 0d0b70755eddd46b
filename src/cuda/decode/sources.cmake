set(SFA_KERNEL_SOURCES decode.cu decode_combine.cu)
