// Shared-memory tiles of 16-bit elements for ldmatrix: an XOR swizzle on 16-byte chunks that keeps
// both the cp.async writes and the ldmatrix reads free of bank conflicts, and the address helpers
// for each.
//
// A tile of kRows x kCols elements is stored row-major, kCols * 2 bytes per row, but chunk c
// (elements 8c..8c+7) of row r lives at chunk c ^ key(r):
//   kCols / 8 a multiple of 8 (64, 128, 192, 256 columns): key(r) = r % 8
//   kCols / 8 a multiple of 4 (32, 96 columns):            key(r) = (r / 2) % 4
// An ldmatrix phase reads one chunk column of 8 consecutive rows; the key sends those 8 chunks to
// 8 distinct 16-byte bank groups of the 128-byte bank window (with 4-chunk rows, r % 2 picks the
// window half and the key the chunk within it). Without it every row of a 256-byte row tile
// starts in the same bank: an 8-way conflict.
#pragma once

#include <cstdint>

#include "cuda/common/cp_async.cuh"

namespace sfa::cuda {

template <int kRows_, int kCols_>
struct SmemTile {
  static constexpr int kRows = kRows_;
  static constexpr int kCols = kCols_;
  static constexpr int kChunkElems = 8;  // 16 bytes of 16-bit elements
  static constexpr int kChunks = kCols / kChunkElems;  // per row
  static constexpr int kRowBytes = kCols * 2;
  static constexpr int kBytes = kRows * kRowBytes;
  static_assert(kChunks % 4 == 0, "SmemTile: columns must be a multiple of 32");
  // The chunk bits the swizzle touches, and how many row bits feed it.
  static constexpr int kKeyMask = kChunks % 8 == 0 ? 7 : 3;
  static constexpr int kKeyShift = kChunks % 8 == 0 ? 0 : 1;

  __device__ __forceinline__ static uint32_t key(int row) { return (row >> kKeyShift) & kKeyMask; }
  // Byte offset of chunk `chunk` of row `row`.
  __device__ __forceinline__ static uint32_t offset(int row, int chunk) {
    return row * kRowBytes + ((chunk ^ key(row)) << 4);
  }
};

// The address one lane gives ldmatrix for a tile: its row is fixed (its low three bits come from
// the lane) and its chunk is chunk0 + lane_chunk, chunk0 even and known at compile time. Then
// chunk ^ key(row) = chunk0 ^ (lane_chunk ^ key(row)), so one per-lane XOR term covers every chunk0.
template <class Tile>
struct LdmatrixAddress {
  uint32_t row_base;  // tile + row * kRowBytes
  uint32_t xor16;     // (lane_chunk ^ key(row)) * 16

  LdmatrixAddress() = default;
  __device__ __forceinline__ LdmatrixAddress(uint32_t tile, int row, int lane_chunk)
      : row_base(tile + row * Tile::kRowBytes), xor16((lane_chunk ^ Tile::key(row)) << 4) {}
  // Address of (row + row_offset, chunk0 + lane_chunk); row_offset a multiple of 8.
  __device__ __forceinline__ uint32_t at(int row_offset, int chunk0) const {
    return row_base + row_offset * Tile::kRowBytes + ((chunk0 << 4) ^ xor16);
  }
};

// The same addresses with every chunk offset folded into an immediate: chunk0 even and below 2^k
// for a swizzle of k bits leaves (chunk0 ^ x) = (chunk0 & ~mask) | ((chunk0 & mask) ^ x), so one
// register per even value of chunk0 & mask (4, or 2 for 4-chunk rows) serves every chunk and row
// offset of the tile. LdmatrixAddress needs one register per distinct chunk0 (16 at head_dim
// 256), which ptxas keeps live across the key loop.
template <class Tile>
struct LdmatrixBases {
  static constexpr int kBases = (Tile::kKeyMask + 1) / 2;
  uint32_t base[kBases];  // tile + row * kRowBytes + ((2i ^ lane_chunk ^ key(row)) << 4)

  LdmatrixBases() = default;
  __device__ __forceinline__ LdmatrixBases(uint32_t tile, int row, int lane_chunk) {
    const uint32_t x = lane_chunk ^ Tile::key(row);
#pragma unroll
    for (int i = 0; i < kBases; ++i) base[i] = tile + row * Tile::kRowBytes + (((2 * i) ^ x) << 4);
  }
  // Address of (row + row_offset, chunk0 + lane_chunk); row_offset a multiple of 8, chunk0 even
  // and known at compile time (it picks the register).
  __device__ __forceinline__ uint32_t at(int row_offset, int chunk0) const {
    return base[(chunk0 & Tile::kKeyMask) / 2] + row_offset * Tile::kRowBytes + ((chunk0 & ~Tile::kKeyMask) << 4);
  }
  // The same lanes one tile further (a second pipeline stage at `bytes`); bytes keeps the swizzle
  // when it is a multiple of 8 rows.
  __device__ __forceinline__ LdmatrixBases shifted(uint32_t bytes) const {
    LdmatrixBases r;
#pragma unroll
    for (int i = 0; i < kBases; ++i) r.base[i] = base[i] + bytes;
    return r;
  }
};

// Copies global tiles into a swizzled shared tile with cp.async. A row is split into groups of
// kGroupChunks chunks (the chunks one swizzle key permutes: 8, or 4 for 32/96 columns); thread
// tid owns chunk tid % kGroupChunks of every group of rows tid / kGroupChunks + i * kRowsPerPass.
// A pass stride that is a multiple of 8 rows keeps the thread's swizzle key fixed, so its shared
// offsets and global pointer are computed once and each load is one pointer walk plus
// kPasses * kGroups cp.async with immediate offsets.
template <class Tile, int kThreads, typename T>
struct TileLoader {
  static constexpr int kGroupChunks = Tile::kKeyMask + 1;
  static constexpr int kGroups = Tile::kChunks / kGroupChunks;
  static constexpr int kRowsPerPass = kThreads / kGroupChunks;
  static constexpr int kPasses = Tile::kRows / kRowsPerPass;
  static_assert(kThreads % kGroupChunks == 0 && Tile::kRows % kRowsPerPass == 0,
                "TileLoader: rows must divide among the threads");
  static_assert(kRowsPerPass % 8 == 0, "TileLoader: a pass must keep the swizzle key");

  const T* src;       // the thread's chunk of group 0 in row `row`, for a tile at global row 0
  uint32_t offset;    // its shared-memory byte offset in the tile
  int row;

  TileLoader() = default;
  __device__ __forceinline__ TileLoader(const T* g, int64_t row_stride, int tid) : row(tid / kGroupChunks) {
    const int chunk = tid % kGroupChunks;
    src = g + row * row_stride + chunk * Tile::kChunkElems;
    offset = Tile::offset(row, chunk);
  }
  // The loader of thread tid whose `src` (as the constructor computes it) was kept elsewhere.
  __device__ __forceinline__ static TileLoader with_source(const T* thread_src, int tid) {
    TileLoader l;
    l.row = tid / kGroupChunks;
    l.src = thread_src;
    l.offset = Tile::offset(l.row, tid % kGroupChunks);
    return l;
  }
  // Starts copying global rows [first_row, first_row + kRows) into `tile` (row_stride in
  // elements, passed again rather than kept in registers). kGuard: rows at or past first_row +
  // valid_rows are zero-filled, not read; without it every row is read (a tile known to be whole
  // needs no predicates).
  template <bool kGuard>
  __device__ __forceinline__ void load(uint32_t tile, int64_t first_row, int valid_rows,
                                       int64_t row_stride) const {
    const T* p = src + first_row * row_stride;
#pragma unroll
    for (int i = 0; i < kPasses; ++i) {
      const bool valid = !kGuard || row + i * kRowsPerPass < valid_rows;
#pragma unroll
      for (int gi = 0; gi < kGroups; ++gi) {
        const uint32_t dst = tile + offset + i * kRowsPerPass * Tile::kRowBytes + gi * kGroupChunks * 16;
        const T* from = p + gi * kGroupChunks * Tile::kChunkElems;
        if constexpr (kGuard) {
          cp_async_16(dst, from, valid);  // src-size 0: the address is not dereferenced
        } else {
          cp_async_16(dst, from);
        }
      }
      p += kRowsPerPass * row_stride;
    }
  }
  // As load<false> when `enabled`; otherwise every copy is issued with source size 0 (nothing is
  // read, the tile is zero-filled). No branch: the code around a conditional prefetch stays one
  // basic block for the scheduler.
  __device__ __forceinline__ void load_if(bool enabled, uint32_t tile, int64_t first_row, int64_t row_stride) const {
    const T* p = src + first_row * row_stride;
#pragma unroll
    for (int i = 0; i < kPasses; ++i) {
#pragma unroll
      for (int gi = 0; gi < kGroups; ++gi) {
        cp_async_16(tile + offset + i * kRowsPerPass * Tile::kRowBytes + gi * kGroupChunks * 16,
                    p + gi * kGroupChunks * Tile::kChunkElems, enabled);
      }
      p += kRowsPerPass * row_stride;
    }
  }
};

}  // namespace sfa::cuda
