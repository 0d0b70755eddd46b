// The public entry points: validate, select, check the workspace, dispatch. Nothing else.
#include <exception>
#include <string>

#include "api/select.h"
#include "api/validate.h"
#include "cpu/cpu_backend.h"
#include "cuda/cuda_backend.h"
#include "sfa/sfa.h"

namespace sfa {
namespace {

struct KernelName {
  Kernel kernel;
  const char* name;
};
constexpr KernelName kKernelNames[] = {
    {Kernel::kAuto, "auto"},         {Kernel::kCpuReference, "cpu-reference"},
    {Kernel::kCpuFlash, "cpu-flash"}, {Kernel::kCpuDecode, "cpu-decode"},
    {Kernel::kStandard, "standard"}, {Kernel::kFa1, "fa1"},
    {Kernel::kFa2, "fa2"},           {Kernel::kDecode, "decode"},
    {Kernel::kFa2Mma, "fa2_mma"},    {Kernel::kDecodeFast, "decode_fast"},
};

Status invalid(const std::string& message) { return Status(StatusCode::kInvalidArgument, message); }

// No exception escapes the API: a failed allocation of a message string or a thread becomes a
// status.
template <typename Body>
Status guarded(Body body) {
  try {
    return body();
  } catch (const std::exception& e) {
    return Status(StatusCode::kInternal, std::string("unexpected exception: ") + e.what());
  } catch (...) {
    return Status(StatusCode::kInternal, "unexpected exception");
  }
}

Status check_kernel_value(Kernel k) {
  for (const KernelName& n : kKernelNames) {
    if (n.kernel == k) return Status::ok();
  }
  return invalid("kernel: unknown kernel value " + std::to_string(static_cast<int>(k)));
}

Status check_workspace(const Launch& launch, size_t needed) {
  if (needed == 0) return Status::ok();
  if (launch.workspace == nullptr || launch.workspace_bytes < needed) {
    return invalid("workspace: expected at least " + std::to_string(needed) + " bytes, got " +
                   (launch.workspace == nullptr ? std::string("none")
                                                : std::to_string(launch.workspace_bytes) + " bytes"));
  }
  if (reinterpret_cast<uintptr_t>(launch.workspace) % 16 != 0) {
    return invalid("workspace: expected a 16-byte aligned pointer");
  }
  return Status::ok();
}

struct PreparedAttention {
  AttentionProblem problem;
  Device device;
  Kernel kernel = Kernel::kAuto;
  size_t workspace_bytes = 0;
};

Status prepare_attention(const AttentionArgs& args, bool varlen, PreparedAttention* out) {
  Status st = check_kernel_value(args.kernel);
  if (!st) return st;
  if (!(st = validate_attention(args, varlen, &out->problem, &out->device))) return st;
  if (!(st = select_attention(out->problem, out->device, varlen, args.kernel, &out->kernel))) return st;
  out->workspace_bytes = attention_workspace_bytes(out->problem, out->kernel);
  return Status::ok();
}

struct PreparedDecode {
  DecodeProblem problem;
  Device device;
  Kernel kernel = Kernel::kAuto;
  size_t workspace_bytes = 0;
};

Status prepare_decode(const DecodeArgs& args, PreparedDecode* out) {
  Status st = check_kernel_value(args.kernel);
  if (!st) return st;
  if (!(st = validate_decode(args, &out->problem, &out->device))) return st;
  if (!(st = select_decode(out->problem, out->device, args.kernel, &out->kernel))) return st;
  out->problem.num_splits = decode_num_splits(out->problem, out->device, out->kernel);
  out->workspace_bytes = decode_workspace_bytes(out->problem, out->problem.num_splits);
  return Status::ok();
}

Status run_attention(const AttentionArgs& args, bool varlen, const Launch& launch) {
  PreparedAttention prep;
  Status st = prepare_attention(args, varlen, &prep);
  if (!st) return st;
  if (!(st = check_workspace(launch, prep.workspace_bytes))) return st;
  const AttentionProblem& p = prep.problem;
  if (p.batch == 0 || p.seqlen_q == 0) return Status::ok();  // nothing to write
  switch (prep.kernel) {
    case Kernel::kCpuReference: return cpu::reference_attention(p);
    case Kernel::kCpuFlash: return cpu::flash_attention(p);
    default: return cuda::run_attention(prep.kernel, p, prep.device.index, launch);
  }
}

}  // namespace

const char* kernel_name(Kernel kernel) {
  for (const KernelName& n : kKernelNames) {
    if (n.kernel == kernel) return n.name;
  }
  return "unknown";
}

Status kernel_from_name(const char* name, Kernel* kernel) {
  return guarded([&] {
    std::string known;
    for (const KernelName& n : kKernelNames) {
      if (name != nullptr && std::string(name) == n.name) {
        *kernel = n.kernel;
        return Status::ok();
      }
      known += known.empty() ? "" : ", ";
      known += n.name;
    }
    return invalid(std::string("kernel: expected one of ") + known + "; got '" +
                   (name ? name : "(null)") + "'");
  });
}

Status attention(const AttentionArgs& args, const Launch& launch) {
  return guarded([&] { return run_attention(args, false, launch); });
}

Status attention_varlen(const AttentionArgs& args, const Launch& launch) {
  return guarded([&] { return run_attention(args, true, launch); });
}

Status attention_workspace_size(const AttentionArgs& args, bool varlen, size_t* bytes) {
  return guarded([&] {
    PreparedAttention prep;
    Status st = prepare_attention(args, varlen, &prep);
    if (st) *bytes = prep.workspace_bytes;
    return st;
  });
}

Status select_kernel(const AttentionArgs& args, bool varlen, Kernel* kernel) {
  return guarded([&] {
    PreparedAttention prep;
    Status st = prepare_attention(args, varlen, &prep);
    if (st) *kernel = prep.kernel;
    return st;
  });
}

Status decode(const DecodeArgs& args, const Launch& launch) {
  return guarded([&] {
    PreparedDecode prep;
    Status st = prepare_decode(args, &prep);
    if (!st) return st;
    if (!(st = check_workspace(launch, prep.workspace_bytes))) return st;
    DecodeProblem& p = prep.problem;
    if (p.batch == 0 || p.seqlen_q == 0) return Status::ok();
    bind_decode_workspace(&p, launch.workspace);
    switch (prep.kernel) {
      case Kernel::kCpuReference: return cpu::reference_decode(p);
      case Kernel::kCpuDecode: return cpu::split_kv_decode(p);
      default: return cuda::run_decode(prep.kernel, p, prep.device.index, launch);
    }
  });
}

Status decode_workspace_size(const DecodeArgs& args, size_t* bytes) {
  return guarded([&] {
    PreparedDecode prep;
    Status st = prepare_decode(args, &prep);
    if (st) *bytes = prep.workspace_bytes;
    return st;
  });
}

Status select_kernel(const DecodeArgs& args, Kernel* kernel) {
  return guarded([&] {
    PreparedDecode prep;
    Status st = prepare_decode(args, &prep);
    if (st) *kernel = prep.kernel;
    return st;
  });
}

bool built_with_cuda() { return cuda::built(); }
bool kernel_built(Kernel kernel) {
  return kernel == Kernel::kAuto || is_cpu_kernel(kernel) || cuda::has_kernel(kernel);
}
int cuda_device_count() { return cuda::device_count(); }

}  // namespace sfa
