// DecodeRun: q, a contiguous or paged KV cache, poisoned outputs and cached references for decode().
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
constexpr int kUnusedPages = 3;  // pages in the pool that no sequence owns
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
}  // namespace

struct DecodeRun::Impl {
  DecodeCase c;
  Device device;
  uint64_t seed = 0;
  Kernel last_kernel = Kernel::kAuto;

  IndexTensor lengths;      // cache_seqlens [batch]
  IndexTensor block_table;  // [batch, pages_per_seq] when paged
  int64_t pages_per_seq = 0, num_pages = 0;
  DataTensor q, k, v, out;
  std::vector<float> fq, fk, fv;  // float32 copies (the layouts are contiguous)
  int64_t lse_shape[3] = {0, 0, 0};
  std::vector<float> lse_host;
  Buffer lse;

  struct Reference {
    Status status;
    std::vector<float> out, lse;
  };
  std::map<Kernel, Reference> references;
  detail::Workspace workspace, reference_workspace;
  Buffer dq, dk, dv, dout, dlse;

  bool paged() const { return c.page_size > 0; }
  // The cache row (of k/v seen as [rows, heads_kv, head_dim]) holding position j of sequence b.
  int64_t cache_row(int64_t b, int64_t j) const {
    if (!paged()) return b * c.kv_len + j;
    const int64_t page = block_table.host[b * pages_per_seq + j / c.page_size];
    return page * c.page_size + j % c.page_size;
  }
  int64_t lse_index(int64_t row, int64_t h) const {
    return (row / c.seqlen_q * c.heads + h) * c.seqlen_q + row % c.seqlen_q;
  }
  Status build();
  Status compute_reference(Kernel kernel, Reference* ref);
  DecodeArgs base_args() const;
};

Status DecodeRun::Impl::build() {
  detail::Rng rng(seed);
  // Lengths: all kv_len, or (ragged) random with one empty and one full sequence.
  lengths.host.assign(c.batch, c.kv_len);
  if (c.ragged && c.batch > 1) {
    for (int b = 0; b < c.batch; ++b) lengths.host[b] = rng.uniform_int(0, c.kv_len);
    const int full = rng.uniform_int(0, c.batch - 1);
    lengths.host[full] = c.kv_len;
    lengths.host[(full + 1) % c.batch] = 0;
  }
  // Paged: every sequence owns ceil(kv_len / page_size) pages, drawn in shuffled order from a
  // pool with a few pages to spare.
  if (paged()) {
    pages_per_seq = (c.kv_len + c.page_size - 1) / c.page_size;
    num_pages = c.batch * pages_per_seq + kUnusedPages;
    std::vector<int32_t> pages(static_cast<size_t>(num_pages));
    for (int64_t i = 0; i < num_pages; ++i) pages[i] = static_cast<int32_t>(i);
    rng.shuffle(&pages);
    block_table.host.assign(pages.begin(), pages.begin() + c.batch * pages_per_seq);
  }

  const int64_t q_shape[] = {c.batch, c.seqlen_q, c.heads, c.head_dim};
  const int64_t cache_shape[] = {paged() ? num_pages : c.batch, paged() ? c.page_size : c.kv_len,
                                 c.heads_kv, c.head_dim};
  const Layout q_layout = detail::contiguous_layout(4, q_shape);
  const Layout cache_layout = detail::contiguous_layout(4, cache_shape);
  Status st;
  if (!(st = q.allocate(q_layout, c.dtype, device))) return st;
  if (!(st = k.allocate(cache_layout, c.dtype, device))) return st;
  if (!(st = v.allocate(cache_layout, c.dtype, device))) return st;
  if (!(st = out.allocate(q_layout, c.dtype, device))) return st;

  // Random (mean 0, variance 1) everywhere a sequence's keys live; positions past a length and unused pages stay NaN,
  // so a kernel that lets them into the result is caught.
  for (int64_t r = 0; r < q_layout.rows(); ++r) q.fill_random(r, &rng);
  for (int64_t b = 0; b < c.batch; ++b) {
    for (int64_t j = 0; j < lengths.host[b]; ++j) {
      k.fill_random(cache_row(b, j), &rng);
      v.fill_random(cache_row(b, j), &rng);
    }
  }
  fq = detail::to_float32(q, q_layout);
  fk = detail::to_float32(k, cache_layout);
  fv = detail::to_float32(v, cache_layout);
  if (!(st = q.upload()) || !(st = k.upload()) || !(st = v.upload())) return st;
  if (!(st = lengths.allocate_and_upload(device))) return st;
  if (paged() && !(st = block_table.allocate_and_upload(device))) return st;

  lse_shape[0] = c.batch;
  lse_shape[1] = c.heads;
  lse_shape[2] = c.seqlen_q;
  lse_host.assign(static_cast<size_t>(c.batch) * c.heads * c.seqlen_q, kNaN);
  return Buffer::allocate(device, lse_host.size() * sizeof(float), &lse);
}

DecodeArgs DecodeRun::Impl::base_args() const {
  DecodeArgs a;
  a.softmax_scale = c.softmax_scale;
  a.window_left = c.window_left;
  a.softcap = c.softcap;
  a.num_splits = c.num_splits;
  return a;
}

namespace {
// cache_seqlens and (paged) block_table views over `lengths` / `table` on `device`.
void set_index_views(DecodeArgs* a, void* lengths, void* table, int batch, int64_t pages_per_seq,
                     bool paged, Device device) {
  const int64_t n = batch;
  a->cache_seqlens = make_tensor(lengths, DType::kInt32, device, 1, &n);
  if (paged) {
    const int64_t shape[] = {batch, pages_per_seq};
    a->block_table = make_tensor(table, DType::kInt32, device, 2, shape);
  }
}
}  // namespace

Status DecodeRun::Impl::compute_reference(Kernel kernel, Reference* ref) {
  Device rd;
  Status st = detail::reference_device(kernel, device, &rd);
  if (!st) return st;
  ref->out.assign(static_cast<size_t>(out.layout.elements), kNaN);
  ref->lse.assign(lse_host.size(), kNaN);
  const size_t in_q = fq.size() * sizeof(float), in_kv = fk.size() * sizeof(float);
  const size_t out_bytes = ref->out.size() * sizeof(float), lse_bytes = ref->lse.size() * sizeof(float);
  void *pq = fq.data(), *pk = fk.data(), *pv = fv.data(), *pout = ref->out.data(), *plse = ref->lse.data();
  void *plen = lengths.host.data(), *ptable = block_table.host.data();
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
    plen = lengths.buffer.data(), ptable = block_table.buffer.data();
  }
  DecodeArgs a = base_args();
  a.q = q.layout.view(pq, DType::kFloat32, rd);
  a.k_cache = k.layout.view(pk, DType::kFloat32, rd);
  a.v_cache = v.layout.view(pv, DType::kFloat32, rd);
  a.out = out.layout.view(pout, DType::kFloat32, rd);
  a.lse = make_tensor(plse, DType::kFloat32, rd, 3, lse_shape);
  set_index_views(&a, plen, ptable, c.batch, pages_per_seq, paged(), rd);
  a.kernel = kernel;
  Launch launch;
  st = reference_workspace.get(kernel, rd, [&](size_t* b) { return decode_workspace_size(a, b); }, &launch);
  if (!st) return st;
  if (!(st = decode(a, launch))) return st;
  if (rd.type == DeviceType::kCUDA) {
    if (!(st = detail::synchronize(rd))) return st;
    if (!(st = dout.download(ref->out.data(), out_bytes))) return st;
    if (!(st = dlse.download(ref->lse.data(), lse_bytes))) return st;
  }
  const bool bad = std::any_of(ref->out.begin(), ref->out.end(), [](float x) { return std::isnan(x); }) ||
                   std::any_of(ref->lse.begin(), ref->lse.end(), [](float x) { return std::isnan(x); });
  if (bad) {
    return Status(StatusCode::kInternal,
                  std::string("reference kernel '") + kernel_name(kernel) + "' left NaN in its output");
  }
  return Status::ok();
}

DecodeRun::DecodeRun(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DecodeRun::~DecodeRun() = default;

Status DecodeRun::create(const DecodeCase& c, Device device, uint64_t seed, std::unique_ptr<DecodeRun>* run) {
  auto impl = std::make_unique<Impl>();
  impl->c = c;
  impl->device = device;
  impl->seed = seed;
  Status st = impl->build();
  if (!st) return st;
  run->reset(new DecodeRun(std::move(impl)));
  return Status::ok();
}

DecodeArgs DecodeRun::args(Kernel kernel) const {
  const Impl& m = *impl_;
  DecodeArgs a = m.base_args();
  a.q = m.q.view();
  a.k_cache = m.k.view();
  a.v_cache = m.v.view();
  a.out = m.out.view();
  if (m.c.with_lse) a.lse = make_tensor(m.lse.data(), DType::kFloat32, m.device, 3, m.lse_shape);
  set_index_views(&a, m.lengths.buffer.data(), m.block_table.buffer.data(), m.c.batch, m.pages_per_seq,
                  m.paged(), m.device);
  a.kernel = kernel;
  return a;
}

Status DecodeRun::launch(Kernel kernel, void* stream) {
  Impl& m = *impl_;
  const DecodeArgs a = args(kernel);
  Launch l;
  l.stream = stream;
  Status st = m.workspace.get(kernel, m.device, [&](size_t* b) { return decode_workspace_size(a, b); }, &l);
  if (!st) return st;
  return decode(a, l);
}

Status DecodeRun::run(Kernel kernel, void* stream) {
  Impl& m = *impl_;
  m.last_kernel = kernel;
  Status st = m.out.buffer.poison(stream);
  if (st) st = m.lse.poison(stream);
  if (!st) return st;
  return launch(kernel, stream);
}

CaseResult DecodeRun::verify(Kernel reference) {
  Impl& m = *impl_;
  CaseResult r = detail::start_result(m.c, m.last_kernel, reference, m.seed);
  const Impl::Reference* found = detail::outputs_and_reference(m, reference, &r);
  if (found == nullptr) return r;
  const Impl::Reference& ref = *found;
  detail::ErrorAccumulator acc;
  std::vector<float> got(static_cast<size_t>(m.c.head_dim));
  for (int64_t row = 0; row < m.out.layout.rows(); ++row) {
    for (int64_t h = 0; h < m.c.heads; ++h) {
      m.out.read(row, h, got.data());
      const int64_t base = m.out.layout.offset(row, h, 0);
      for (int64_t d = 0; d < m.c.head_dim; ++d) acc.out(got[d], ref.out[base + d]);
      if (m.c.with_lse) acc.lse(m.lse_host[m.lse_index(row, h)], ref.lse[m.lse_index(row, h)]);
    }
  }
  acc.finish(&r);
  return r;
}

double DecodeRun::flops() const {
  const Impl& m = *impl_;
  double keys = 0;
  for (int32_t n : m.lengths.host) keys += n;
  return 4.0 * m.c.heads * m.c.head_dim * m.c.seqlen_q * keys;
}

double DecodeRun::bytes() const {
  const Impl& m = *impl_;
  double keys = 0;
  for (int32_t n : m.lengths.host) keys += n;
  return keys * m.c.heads_kv * m.c.head_dim * 2.0 * static_cast<double>(dtype_size(m.c.dtype));
}

const DecodeCase& DecodeRun::test_case() const { return impl_->c; }
Device DecodeRun::device() const { return impl_->device; }
uint64_t DecodeRun::seed() const { return impl_->seed; }
const std::vector<int32_t>& DecodeRun::cache_seqlens() const { return impl_->lengths.host; }

}  // namespace sfa::testing
