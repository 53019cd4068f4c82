#include "engine/parallel/nccl_link.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <stdexcept>
#include <string>

#include "engine/parallel/stage_stream.h"
#include "engine/runtime/cuda_runtime_info.h"

namespace la::parallel {

struct NcclLink::Nccl {
  ncclComm_t comms[2] = {nullptr, nullptr};  // rank 0 on src, rank 1 on dst (one rank if src == dst)
  int ranks = 0;
  cudaStream_t receiving = nullptr;  // on dst, the link's own
  ncclComm_t sender() const { return comms[0]; }
  ncclComm_t receiver() const { return comms[ranks - 1]; }
  int receiver_rank() const { return ranks - 1; }
};

namespace {

std::string link_name(at::Device src, at::Device dst) { return src.str() + " -> " + dst.str(); }

void check_nccl(ncclResult_t r, const char* call, ncclComm_t comm, at::Device src, at::Device dst) {
  if (r == ncclSuccess) return;
  std::string why = ncclGetErrorString(r);
  const char* last = ncclGetLastError(comm);
  if (last && *last) why += std::string(" (") + last + ")";
  throw std::runtime_error(std::string("NCCL ") + call + " failed for the hand-over " + link_name(src, dst) + ": " +
                           why + "; NCCL_DEBUG=WARN in the environment makes NCCL say more");
}

void check_cuda(cudaError_t e, const char* call, at::Device src, at::Device dst) {
  if (e == cudaSuccess) return;
  cudaGetLastError();
  throw std::runtime_error(std::string(call) + " failed for the hand-over " + link_name(src, dst) + ": " +
                           cudaGetErrorString(e));
}

}  // namespace

NcclLink::NcclLink(at::Device src, at::Device dst) : src_(src), dst_(dst), nccl_(std::make_unique<Nccl>()) {
  if (!src.is_cuda() || !dst.is_cuda() || !src.has_index() || !dst.has_index())
    throw std::invalid_argument("an NCCL hand-over joins two CUDA devices given by index, not " +
                                link_name(src, dst));
  const int present = runtime::query_cuda_runtime().device_count;
  if (src.index() >= present || dst.index() >= present)
    throw std::invalid_argument("the hand-over " + link_name(src, dst) + " names a CUDA device this machine does " +
                                "not have (" + std::to_string(present) + " here)");
  const int devices[2] = {src.index(), dst.index()};
  nccl_->ranks = src == dst ? 1 : 2;
  {
    // NCCL sets the current device while it makes the communicators; the caller's comes back.
    const c10::cuda::CUDAGuard keep_current(src.index());
    check_nccl(ncclCommInitAll(nccl_->comms, nccl_->ranks, devices), "ncclCommInitAll", nullptr, src, dst);
  }
  const c10::cuda::CUDAGuard on_dst(dst.index());
  const cudaError_t e = cudaStreamCreateWithFlags(&nccl_->receiving, cudaStreamNonBlocking);
  if (e != cudaSuccess) {
    for (ncclComm_t c : nccl_->comms)
      if (c) ncclCommDestroy(c);
    check_cuda(e, "cudaStreamCreateWithFlags", src, dst);
  }
}

NcclLink::~NcclLink() {
  // ncclCommDestroy finishes the operations still queued on the communicator first.
  for (ncclComm_t c : nccl_->comms)
    if (c) ncclCommDestroy(c);
  const c10::cuda::CUDAGuard on_dst(dst_.index());
  cudaStreamSynchronize(nccl_->receiving);
  cudaStreamDestroy(nccl_->receiving);
}

std::shared_ptr<c10::Event> NcclLink::transfer(const std::vector<at::Tensor*>& slots) {
  const std::lock_guard<std::mutex> turn(lock_);
  const c10::cuda::CUDAStream sending = c10::cuda::getCurrentCUDAStream(src_.index());
  const c10::cuda::CUDAStream receiving = c10::cuda::getStreamFromExternal(nccl_->receiving, dst_.index());

  // What goes: dense tensors as they are (their bytes, in their strides), others made
  // contiguous on the sending stream, as Tensor::to makes them.
  std::vector<at::Tensor> sent(slots.size()), received(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    const at::Tensor& t = *slots[i];
    if (!t.defined()) continue;
    if (t.device() != src_)
      throw std::invalid_argument("the hand-over " + link_name(src_, dst_) + " was given a tensor on " +
                                  t.device().str());
    sent[i] = t.is_non_overlapping_and_dense() ? t : t.contiguous();
  }
  {
    // The copies' memory belongs to the link's receiving stream; the consumer's stream is
    // recorded for it when it takes them (StageStream::wait), so the caching allocator gives
    // it back only after the consumer's work.
    const c10::cuda::CUDAStreamGuard on_receiving(receiving);
    for (size_t i = 0; i < slots.size(); ++i)
      if (sent[i].defined())
        received[i] = at::empty_strided(sent[i].sizes(), sent[i].strides(), sent[i].options().device(dst_));
  }

  // The receive waits for the work before the send: queued at once, its kernel would spin on the
  // destination GPU, holding some of its cores, for as long as the producer's step still runs.
  {
    c10::Event sendable(c10::DeviceType::CUDA);
    sendable.record(sending);
    sendable.block(receiving);
  }
  // Both halves in one group, from this thread (one thread, two devices: NCCL's group
  // semantics), each on its own device's stream. A failed call still closes the group.
  const c10::cuda::CUDAGuard keep_current(src_.index());  // NCCL may switch devices in the group
  ncclResult_t first_error = ncclGroupStart();
  if (first_error == ncclSuccess) {
    for (size_t i = 0; i < slots.size() && first_error == ncclSuccess; ++i) {
      if (!sent[i].defined() || sent[i].numel() == 0) continue;  // an empty one is just made on dst
      const size_t bytes = sent[i].nbytes();
      first_error = ncclSend(sent[i].data_ptr(), bytes, ncclUint8, nccl_->receiver_rank(), nccl_->sender(),
                             sending.stream());
      if (first_error == ncclSuccess)
        first_error = ncclRecv(received[i].data_ptr(), bytes, ncclUint8, 0, nccl_->receiver(), nccl_->receiving);
    }
    const ncclResult_t end = ncclGroupEnd();
    if (first_error == ncclSuccess) first_error = end;
  }
  check_nccl(first_error, "send/receive", nccl_->sender(), src_, dst_);

  // The sending stream reads what was sent: memory another stream allocated (a tensor handed to
  // this stage) must not be reused before the send is done.
  for (const at::Tensor& t : sent) used_by_current_stream(t);
  auto ready = std::make_shared<c10::Event>(c10::DeviceType::CUDA);
  ready->record(receiving);
  for (size_t i = 0; i < slots.size(); ++i)
    if (received[i].defined()) *slots[i] = std::move(received[i]);
  return ready;
}

}  // namespace la::parallel
