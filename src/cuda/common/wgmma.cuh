// Hopper's warpgroup matrix products (wgmma.mma_async, sm_90a only): the shared-memory tile
// layout they read, its matrix descriptors, the m64n64k16 products and their fences.
//
// A warpgroup is four consecutive warps (128 threads, the first warp index a multiple of 4). One
// wgmma.m64n64k16 computes D[64 x 64] (+)= A[64 x 16] B[16 x 64] on all four warps' tensor cores:
// warp w of the group owns rows 16w..16w+15 of D, laid out as eight mma.sync C fragments side by
// side (mma.cuh's FragC: x[0], x[1] = row g, columns 8i + 2t, 2t + 1; x[2], x[3] = row g + 8), so
// the softmax code of mma_attention.cuh runs on it unchanged. A comes from shared memory (a
// descriptor) or from four registers per thread in mma.sync's A layout (FragA); B from shared
// memory. The product runs asynchronously: issue, commit the group, wait for it, and only then
// read D (PTX ISA, "Asynchronous Warpgroup Level Matrix Multiply-Accumulate").
//
// Tile layout (WgTile<kRows, kCols>, 16-bit elements): the columns are cut into panels of 64
// (128 bytes a row); panel p holds every row of columns [64p, 64p + 64), 128 bytes per row, and
// 16-byte chunk c of row r sits at chunk c ^ (r % 8). With each panel 1024-byte aligned that is
// the hardware's 128-byte swizzle (address bits 4-6 XOR bits 7-9), so a descriptor needs only:
// - K-major reads (Q and K: rows are M or N, a k-step is 16 columns): start at panel ks / 4, plus
//   32 (ks % 4) bytes inside the swizzled rows; 8-row groups 1024 bytes apart.
// - MN-major reads (V in P V, transposed: rows are the k dimension, columns N): a k-step of 16
//   rows starts 2048 bytes further; 8-row groups 1024 bytes apart, panels (N) kRows * 128 apart.
// cp.async writes the tiles (generic proxy) and wgmma reads them (async proxy): the writer's
// fence_proxy_async() and then a barrier order the two.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/common/cp_async.cuh"
#include "cuda/common/mma.cuh"

namespace sfa::cuda {

template <int kRows_, int kCols_>
struct WgTile {
  static constexpr int kRows = kRows_;
  static constexpr int kCols = kCols_;
  static constexpr int kChunkElems = 8;
  static constexpr int kChunks = kCols / kChunkElems;  // per row
  static constexpr int kPanelBytes = kRows * 128;
  static constexpr int kBytes = kCols / 64 * kPanelBytes;
  static_assert(kCols % 64 == 0 && kRows % 8 == 0, "WgTile: whole 64-column panels of 8-row groups");

  // Byte offset of 16-byte chunk `chunk` (columns 8 chunk .. 8 chunk + 7) of row `row`.
  __host__ __device__ static constexpr uint32_t offset(int row, int chunk) {
    return (chunk / 8) * kPanelBytes + row * 128 + (((chunk % 8) ^ (row % 8)) << 4);
  }
  // Descriptor start of k-step ks (16 columns) read K-major.
  __host__ __device__ static constexpr uint32_t k_major_step(int ks) { return (ks / 4) * kPanelBytes + (ks % 4) * 32; }
};

// A shared-memory matrix descriptor with the 128-byte swizzle: start address, leading and
// stride byte offsets (each stored >> 4 in 14 bits; shared addresses are below 256 KB).
__device__ __forceinline__ uint64_t wgmma_descriptor(uint32_t addr, uint32_t leading_bytes, uint32_t stride_bytes) {
  return static_cast<uint64_t>((addr & 0x3ffff) >> 4) | static_cast<uint64_t>(leading_bytes >> 4) << 16 |
         static_cast<uint64_t>(stride_bytes >> 4) << 32 | uint64_t{1} << 62;
}

// Copies global tiles into a WgTile with cp.async. The threads of a warp take consecutive chunks
// of a row (whole 512-byte rows at 256 columns): thread tid owns chunk tid % kChunks of rows
// tid / kChunks + i kRowsPerPass: a load is a pointer walk and kPasses cp.async (the row's swizzle
// key repeats every 8 rows, so the shared offsets take at most two values).
template <class Tile, int kThreads, typename T>
struct WgTileLoader {
  static constexpr int kRowsPerPass = kThreads / Tile::kChunks;
  static constexpr int kPasses = Tile::kRows / kRowsPerPass;
  static_assert(kThreads % Tile::kChunks == 0 && Tile::kRows % kRowsPerPass == 0,
                "WgTileLoader: rows must divide among the threads");

  const T* src;  // the thread's chunk in row `row` of a tile at global row 0
  int row;
  int chunk;

  __device__ __forceinline__ WgTileLoader(const T* g, int64_t row_stride, int tid)
      : row(tid / Tile::kChunks), chunk(tid % Tile::kChunks) {
    src = g + row * row_stride + chunk * Tile::kChunkElems;
  }
  // Starts copying global rows [first_row, first_row + kRows) into `tile`; with kGuard, rows at or
  // past first_row + valid_rows are zero-filled, not read.
  template <bool kGuard>
  __device__ __forceinline__ void load(uint32_t tile, int64_t first_row, int valid_rows, int64_t row_stride) const {
    const T* p = src + first_row * row_stride;
#pragma unroll
    for (int i = 0; i < kPasses; ++i) {
      const int r = row + i * kRowsPerPass;
      const uint32_t dst = tile + Tile::offset(r, chunk);
      if constexpr (kGuard) {
        cp_async_16(dst, p, r < valid_rows);
      } else {
        cp_async_16(dst, p);
      }
      p += kRowsPerPass * row_stride;
    }
  }
};

// Orders this thread's generic-proxy writes to shared memory (stores, finished cp.async copies)
// before later async-proxy reads (wgmma) that a barrier makes them visible to.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// Before the first wgmma of a sequence: the registers it reads or accumulates into were written
// by ordinary instructions.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }

// Closes the group of products issued since the last commit.
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }

// Waits until at most kPending committed groups of this warp are in flight.
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}

// Tells the compiler the accumulators are defined here (after wgmma_wait): it must not move their
// reads above the wait, nor keep copies made before the products finished.
template <int kTiles>
__device__ __forceinline__ void wgmma_fence_operands(FragC (&d)[kTiles]) {
#pragma unroll
  for (int i = 0; i < kTiles; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[i].x[e])::"memory");
}

#define SFA_WGMMA_D32(d)                                                                                     \
  "+f"(d[0].x[0]), "+f"(d[0].x[1]), "+f"(d[0].x[2]), "+f"(d[0].x[3]), "+f"(d[1].x[0]), "+f"(d[1].x[1]),     \
      "+f"(d[1].x[2]), "+f"(d[1].x[3]), "+f"(d[2].x[0]), "+f"(d[2].x[1]), "+f"(d[2].x[2]), "+f"(d[2].x[3]), \
      "+f"(d[3].x[0]), "+f"(d[3].x[1]), "+f"(d[3].x[2]), "+f"(d[3].x[3]), "+f"(d[4].x[0]), "+f"(d[4].x[1]), \
      "+f"(d[4].x[2]), "+f"(d[4].x[3]), "+f"(d[5].x[0]), "+f"(d[5].x[1]), "+f"(d[5].x[2]), "+f"(d[5].x[3]), \
      "+f"(d[6].x[0]), "+f"(d[6].x[1]), "+f"(d[6].x[2]), "+f"(d[6].x[3]), "+f"(d[7].x[0]), "+f"(d[7].x[1]), \
      "+f"(d[7].x[2]), "+f"(d[7].x[3])
#define SFA_WGMMA_D32_LIST                                                                                 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, " \
  "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"

// D (+)= A B, m64n64k16: A [64 x 16] and B [16 x 64] K-major in shared memory (descriptors).
// accumulate 0: D = A B (D's old value is ignored). d: the warp's eight C fragments.
template <typename T>
__device__ __forceinline__ void wgmma_m64n64k16_ss(FragC* d, uint64_t a_desc, uint64_t b_desc, int accumulate);

// D += A B, m64n64k16: A from registers (the warp's 16 rows, FragA's layout), B [16 x 64] from
// shared memory read MN-major (transposed).
template <typename T>
__device__ __forceinline__ void wgmma_m64n64k16_rs_trans_b(FragC* d, const FragA& a, uint64_t b_desc);

#define SFA_WGMMA_SS(TYPE)                                                                            \
  asm volatile(                                                                                      \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                                   \
      "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " " SFA_WGMMA_D32_LIST            \
      ", %32, %33, p, 1, 1, 0, 0;\n}\n"                                                              \
      : SFA_WGMMA_D32(d)                                                                             \
      : "l"(a_desc), "l"(b_desc), "r"(accumulate)                                                    \
      : "memory")
#define SFA_WGMMA_RS_TRANS_B(TYPE)                                                                      \
  asm volatile(                                                                                         \
      "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"                                                         \
      "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " " SFA_WGMMA_D32_LIST                \
      ", {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"                                                    \
      : SFA_WGMMA_D32(d)                                                                                \
      : "r"(a.x[0]), "r"(a.x[1]), "r"(a.x[2]), "r"(a.x[3]), "l"(b_desc)                                 \
      : "memory")

template <>
__device__ __forceinline__ void wgmma_m64n64k16_ss<__half>(FragC* d, uint64_t a_desc, uint64_t b_desc,
                                                          int accumulate) {
  SFA_WGMMA_SS("f16");
}
template <>
__device__ __forceinline__ void wgmma_m64n64k16_ss<__nv_bfloat16>(FragC* d, uint64_t a_desc, uint64_t b_desc,
                                                                 int accumulate) {
  SFA_WGMMA_SS("bf16");
}
template <>
__device__ __forceinline__ void wgmma_m64n64k16_rs_trans_b<__half>(FragC* d, const FragA& a, uint64_t b_desc) {
  SFA_WGMMA_RS_TRANS_B("f16");
}
template <>
__device__ __forceinline__ void wgmma_m64n64k16_rs_trans_b<__nv_bfloat16>(FragC* d, const FragA& a,
                                                                         uint64_t b_desc) {
  SFA_WGMMA_RS_TRANS_B("bf16");
}

#undef SFA_WGMMA_SS
#undef SFA_WGMMA_RS_TRANS_B
#undef SFA_WGMMA_D32
#undef SFA_WGMMA_D32_LIST

}  // namespace sfa::cuda
