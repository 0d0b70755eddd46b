// AttentionRun: inputs, poisoned outputs and cached references for attention()/attention_varlen().
#include <algorithm>
#include <limits>
#include <map>

#include "harness.h"
#include "testing.h"

namespace sfa::testing {

using detail::Buffer;
using detail::DataTensor;
using detail::IndexTensor;
using detail::Layout;

namespace {
constexpr int64_t kStridePad = 8;       // extra elements per head_dim row of strided views (16 B+)
constexpr int32_t kVarlenLeadRows = 1;  // packed rows before the first sequence
constexpr int32_t kVarlenTailRows = 2;  // packed rows after the last sequence
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
}  // namespace

struct AttentionRun::Impl {
  AttentionCase c;
  Device device;
  uint64_t seed = 0;
  Kernel last_kernel = Kernel::kAuto;

  std::vector<int32_t> len_q, len_k;
  IndexTensor cu_q, cu_k;  // varlen only
  int64_t total_q = 0, total_k = 0;
  DataTensor q, k, v, out;
  Layout q_flat, kv_flat;  // contiguous layouts of the same shapes: the float32 copies
  std::vector<float> fq, fk, fv;

  int lse_rank = 0;
  int64_t lse_shape[kMaxRank] = {0, 0, 0, 0};
  std::vector<float> lse_host;
  Buffer lse;

  struct Reference {
    Status status;
    std::vector<float> out, lse;
  };
  std::map<Kernel, Reference> references;
  detail::Workspace workspace, reference_workspace;
  Buffer dq, dk, dv, dout, dlse;  // float32 inputs/outputs for a CUDA reference kernel

  int64_t lse_index(int64_t row, int64_t h) const {
    if (c.varlen) return h * total_q + row;
    return (row / c.seqlen_q * c.heads + h) * c.seqlen_q + row % c.seqlen_q;
  }
  bool row_written(int64_t row) const {
    return !c.varlen || (row >= cu_q.host.front() && row < cu_q.host.back());
  }
  Status build();
  Status compute_reference(Kernel kernel, Reference* ref);
  AttentionArgs base_args() const;
};

namespace {

// Per-sequence lengths in [0, max]: one sequence at the maximum, one with no queries and (batch >
// 2) one with no keys; with equal maxima every other sequence is square (self-attention).
void draw_lengths(const AttentionCase& c, detail::Rng* rng, std::vector<int32_t>* lq,
                  std::vector<int32_t>* lk) {
  const int b_count = c.batch;
  lq->assign(b_count, 0);
  lk->assign(b_count, 0);
  for (int b = 0; b < b_count; ++b) {
    (*lq)[b] = rng->uniform_int(0, c.seqlen_q);
    (*lk)[b] = (c.seqlen_q == c.seqlen_k && b % 2 == 1) ? (*lq)[b] : rng->uniform_int(0, c.seqlen_k);
  }
  if (b_count == 0) return;
  const int full = rng->uniform_int(0, b_count - 1);
  (*lq)[full] = c.seqlen_q;
  (*lk)[full] = c.seqlen_k;
  if (b_count > 1) (*lq)[(full + 1) % b_count] = 0;
  if (b_count > 2) {
    const int no_keys = (full + 2) % b_count;
    (*lk)[no_keys] = 0;
    (*lq)[no_keys] = std::max<int32_t>((*lq)[no_keys], std::min(1, c.seqlen_q));
  }
}

std::vector<int32_t> prefix_sums(const std::vector<int32_t>& len, int32_t lead) {
  std::vector<int32_t> cu(len.size() + 1, lead);
  for (size_t b = 0; b < len.size(); ++b) cu[b + 1] = cu[b] + len[b];
  return cu;
}

void fill_rows(DataTensor* t, int64_t row_begin, int64_t row_end, detail::Rng* rng) {
  for (int64_t r = row_begin; r < row_end; ++r) t->fill_random(r, rng);
}

}  // namespace

Status AttentionRun::Impl::build() {
  detail::Rng rng(seed);
  const bool varlen = c.varlen;
  if (varlen) {
    draw_lengths(c, &rng, &len_q, &len_k);
    cu_q.host = prefix_sums(len_q, kVarlenLeadRows);
    cu_k.host = prefix_sums(len_k, kVarlenLeadRows);
    total_q = cu_q.host.back() + kVarlenTailRows;
    total_k = cu_k.host.back() + kVarlenTailRows;
  } else {
    len_q.assign(c.batch, c.seqlen_q);
    len_k.assign(c.batch, c.seqlen_k);
  }
  const int rank = varlen ? 3 : 4;
  const int64_t q_dense[] = {c.batch, c.seqlen_q, c.heads, c.head_dim};
  const int64_t kv_dense[] = {c.batch, c.seqlen_k, c.heads_kv, c.head_dim};
  const int64_t q_packed[] = {total_q, c.heads, c.head_dim};
  const int64_t kv_packed[] = {total_k, c.heads_kv, c.head_dim};
  const int64_t* q_shape = varlen ? q_packed : q_dense;
  const int64_t* kv_shape = varlen ? kv_packed : kv_dense;
  q_flat = detail::contiguous_layout(rank, q_shape);
  kv_flat = detail::contiguous_layout(rank, kv_shape);
  const Layout q_layout = c.strided ? detail::heads_major_layout(rank, q_shape, kStridePad) : q_flat;
  const Layout kv_layout = c.strided ? detail::heads_major_layout(rank, kv_shape, kStridePad) : kv_flat;

  Status st;
  if (!(st = q.allocate(q_layout, c.dtype, device))) return st;
  if (!(st = k.allocate(kv_layout, c.dtype, device))) return st;
  if (!(st = v.allocate(kv_layout, c.dtype, device))) return st;
  if (!(st = out.allocate(q_layout, c.dtype, device))) return st;

  // Inputs: random (mean 0, variance 1) in every row a sequence owns; rows of no sequence and padding stay NaN, so a
  // kernel that reads them poisons its output.
  const int64_t q_begin = varlen ? cu_q.host.front() : 0;
  const int64_t q_end = varlen ? cu_q.host.back() : q_layout.rows();
  const int64_t k_begin = varlen ? cu_k.host.front() : 0;
  const int64_t k_end = varlen ? cu_k.host.back() : kv_layout.rows();
  fill_rows(&q, q_begin, q_end, &rng);
  fill_rows(&k, k_begin, k_end, &rng);
  fill_rows(&v, k_begin, k_end, &rng);
  fq = detail::to_float32(q, q_flat);
  fk = detail::to_float32(k, kv_flat);
  fv = detail::to_float32(v, kv_flat);
  if (!(st = q.upload())) return st;
  if (!(st = k.upload())) return st;
  if (!(st = v.upload())) return st;
  if (varlen) {
    if (!(st = cu_q.allocate_and_upload(device))) return st;
    if (!(st = cu_k.allocate_and_upload(device))) return st;
  }

  if (varlen) {
    lse_rank = 2;
    lse_shape[0] = c.heads;
    lse_shape[1] = total_q;
  } else {
    lse_rank = 3;
    lse_shape[0] = c.batch;
    lse_shape[1] = c.heads;
    lse_shape[2] = c.seqlen_q;
  }
  lse_host.assign(static_cast<size_t>(c.heads) * (varlen ? total_q : int64_t{c.batch} * c.seqlen_q), kNaN);
  return Buffer::allocate(device, lse_host.size() * sizeof(float), &lse);
}

AttentionArgs AttentionRun::Impl::base_args() const {
  AttentionArgs a;
  a.softmax_scale = c.softmax_scale;
  a.causal = c.causal;
  a.window_left = c.window_left;
  a.window_right = c.window_right;
  a.softcap = c.softcap;
  if (c.varlen) {
    a.max_seqlen_q = c.seqlen_q;
    a.max_seqlen_k = c.seqlen_k;
  }
  return a;
}

Status AttentionRun::Impl::compute_reference(Kernel kernel, Reference* ref) {
  Device rd;
  Status st = detail::reference_device(kernel, device, &rd);
  if (!st) return st;
  ref->out.assign(static_cast<size_t>(q_flat.elements), kNaN);
  ref->lse.assign(lse_host.size(), kNaN);
  const size_t in_q = fq.size() * sizeof(float), in_kv = fk.size() * sizeof(float);
  const size_t out_bytes = ref->out.size() * sizeof(float), lse_bytes = ref->lse.size() * sizeof(float);
  void *pq = fq.data(), *pk = fk.data(), *pv = fv.data(), *pout = ref->out.data(), *plse = ref->lse.data();
  void *pcu_q = cu_q.host.data(), *pcu_k = cu_k.host.data();
  if (rd.type == DeviceType::kCUDA) {
    if (dq.data() == nullptr) {
      if (!(st = Buffer::allocate(rd, in_q, &dq)) || !(st = dq.upload(fq.data(), in_q))) return st;
      if (!(st = Buffer::allocate(rd, in_kv, &dk)) || !(st = dk.upload(fk.data(), in_kv))) return st;
      if (!(st = Buffer::allocate(rd, in_kv, &dv)) || !(st = dv.upload(fv.data(), in_kv))) return st;
      if (!(st = Buffer::allocate(rd, out_bytes, &dout))) return st;
      if (!(st = Buffer::allocate(rd, lse_bytes, &dlse))) return st;
    }
    if (!(st = dout.poison(nullptr)) || !(st = dlse.poison(nullptr))) return st;
    pq = dq.data(), pk = dk.data(), pv = dv.data(), pout = dout.data(), plse = dlse.data();
    pcu_q = cu_q.buffer.data(), pcu_k = cu_k.buffer.data();
  }
  AttentionArgs a = base_args();
  a.q = q_flat.view(pq, DType::kFloat32, rd);
  a.k = kv_flat.view(pk, DType::kFloat32, rd);
  a.v = kv_flat.view(pv, DType::kFloat32, rd);
  a.out = q_flat.view(pout, DType::kFloat32, rd);
  a.lse = make_tensor(plse, DType::kFloat32, rd, lse_rank, lse_shape);
  if (c.varlen) {
    const int64_t n = c.batch + 1;
    a.cu_seqlens_q = make_tensor(pcu_q, DType::kInt32, rd, 1, &n);
    a.cu_seqlens_k = make_tensor(pcu_k, DType::kInt32, rd, 1, &n);
  }
  a.kernel = kernel;
  Launch launch;
  st = reference_workspace.get(kernel, rd, [&](size_t* b) { return attention_workspace_size(a, c.varlen, b); },
                               &launch);
  if (!st) return st;
  st = c.varlen ? attention_varlen(a, launch) : attention(a, launch);
  if (!st) return st;
  if (rd.type == DeviceType::kCUDA) {
    if (!(st = detail::synchronize(rd))) return st;
    if (!(st = dout.download(ref->out.data(), out_bytes))) return st;
    if (!(st = dlse.download(ref->lse.data(), lse_bytes))) return st;
  }
  for (int64_t r = 0; r < q_flat.rows(); ++r) {
    if (!row_written(r)) continue;
    for (int64_t h = 0; h < c.heads; ++h) {
      bool bad = std::isnan(ref->lse[lse_index(r, h)]);
      for (int64_t d = 0; d < c.head_dim && !bad; ++d) bad = std::isnan(ref->out[q_flat.offset(r, h, d)]);
      if (bad) {
        return Status(StatusCode::kInternal, std::string("reference kernel '") + kernel_name(kernel) +
                                                 "' left NaN in row " + std::to_string(r));
      }
    }
  }
  return Status::ok();
}

AttentionRun::AttentionRun(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AttentionRun::~AttentionRun() = default;

Status AttentionRun::create(const AttentionCase& c, Device device, uint64_t seed,
                            std::unique_ptr<AttentionRun>* run) {
  auto impl = std::make_unique<Impl>();
  impl->c = c;
  impl->device = device;
  impl->seed = seed;
  Status st = impl->build();
  if (!st) return st;
  run->reset(new AttentionRun(std::move(impl)));
  return Status::ok();
}

AttentionArgs AttentionRun::args(Kernel kernel) const {
  const Impl& m = *impl_;
  AttentionArgs a = m.base_args();
  a.q = m.q.view();
  a.k = m.k.view();
  a.v = m.v.view();
  a.out = m.out.view();
  if (m.c.with_lse) a.lse = make_tensor(m.lse.data(), DType::kFloat32, m.device, m.lse_rank, m.lse_shape);
  if (m.c.varlen) {
    const int64_t n = m.c.batch + 1;
    a.cu_seqlens_q = make_tensor(m.cu_q.buffer.data(), DType::kInt32, m.device, 1, &n);
    a.cu_seqlens_k = make_tensor(m.cu_k.buffer.data(), DType::kInt32, m.device, 1, &n);
  }
  a.kernel = kernel;
  return a;
}

Status AttentionRun::launch(Kernel kernel, void* stream) {
  Impl& m = *impl_;
  const AttentionArgs a = args(kernel);
  Launch l;
  l.stream = stream;
  Status st = m.workspace.get(kernel, m.device,
                              [&](size_t* b) { return attention_workspace_size(a, m.c.varlen, b); }, &l);
  if (!st) return st;
  return m.c.varlen ? attention_varlen(a, l) : attention(a, l);
}

Status AttentionRun::poison(Kernel kernel, void* stream) {
  Impl& m = *impl_;
  m.last_kernel = kernel;
  Status st = m.out.buffer.poison(stream);
  if (st) st = m.lse.poison(stream);
  return st;
}

Status AttentionRun::run(Kernel kernel, void* stream) {
  const Status st = poison(kernel, stream);
  if (!st) return st;
  return launch(kernel, stream);
}

CaseResult AttentionRun::verify(Kernel reference) {
  Impl& m = *impl_;
  CaseResult r = detail::start_result(m.c, m.last_kernel, reference, m.seed);
  const Impl::Reference* found = detail::outputs_and_reference(m, reference, &r);
  if (found == nullptr) return r;
  const Impl::Reference& ref = *found;

  // Compare every element a sequence owns; count NaN (never written) separately.
  detail::ErrorAccumulator acc;
  std::vector<char> in_view(static_cast<size_t>(m.out.layout.elements), 0);
  std::vector<float> got(static_cast<size_t>(m.c.head_dim));
  for (int64_t row = 0; row < m.q_flat.rows(); ++row) {
    for (int64_t h = 0; h < m.c.heads; ++h) {
      const int64_t base = m.out.layout.offset(row, h, 0), ref_base = m.q_flat.offset(row, h, 0);
      std::fill(in_view.begin() + base, in_view.begin() + base + m.c.head_dim, 1);
      if (!m.row_written(row)) continue;
      m.out.read(row, h, got.data());
      for (int64_t d = 0; d < m.c.head_dim; ++d) acc.out(got[d], ref.out[ref_base + d]);
      if (m.c.with_lse) acc.lse(m.lse_host[m.lse_index(row, h)], ref.lse[m.lse_index(row, h)]);
    }
  }
  acc.finish(&r);
  // Padding between the rows of a strided out is not part of the tensor: it must stay poisoned.
  const size_t elem = dtype_size(m.c.dtype);
  for (size_t i = 0; i < in_view.size(); ++i) {
    if (in_view[i]) continue;
    for (size_t byte = 0; byte < elem; ++byte) {
      if (m.out.host[i * elem + byte] != 0xFF) {
        ++r.stray_writes;
        break;
      }
    }
  }
  return r;
}

double AttentionRun::flops() const {
  const Impl& m = *impl_;
  double total = 0;
  for (size_t b = 0; b < m.len_q.size(); ++b) {
    const double lq = m.len_q[b], lk = m.len_k[b];
    const double pairs = (m.c.causal && lq == lk) ? lq * lk / 2 : lq * lk;
    total += 4.0 * m.c.heads * pairs * m.c.head_dim;
  }
  return total;
}

const AttentionCase& AttentionRun::test_case() const { return impl_->c; }
Device AttentionRun::device() const { return impl_->device; }
uint64_t AttentionRun::seed() const { return impl_->seed; }
const std::vector<int32_t>& AttentionRun::lengths_q() const { return impl_->len_q; }
const std::vector<int32_t>& AttentionRun::lengths_k() const { return impl_->len_k; }

}  // namespace sfa::testing
