// A one-way NCCL channel from one CUDA device to another, for the DiT pipeline's hand-overs of
// activations and latents between stages on different GPUs (DESIGN §6):
//
//   NcclLink link(at::Device(at::kCUDA, 0), at::Device(at::kCUDA, 1));
//   // On the producing stage's thread, its stream current, after the work that wrote them:
//   std::vector<at::Tensor*> slots = {&hidden, &x};
//   std::shared_ptr<c10::Event> ready = link.transfer(slots);  // now on cuda:1
//   // The consumer's stream waits for `ready` before it reads them.
//
// Each link has its own two-rank communicator (ncclCommInitAll over the two devices), used by
// this link only: NCCL runs the operations of one communicator in the order they are issued, so
// a communicator shared by all stages would make every transfer wait for all earlier ones (the
// DiT pipeline makes one link per pair of stages, even where two pairs share their GPUs). The
// producing thread issues both halves in one group (NCCL's one-thread-many-devices model): the
// send on its own stream, after its work; the receive on a stream of the link's own on the
// destination device, made to wait for that same work (an event) and for nothing else, so a
// receive never queues behind the consumer's compute or sends (on the layers split's ring, a
// receive behind its stage's own send could wait for a transfer that waits for it), nor spins
// there while the producer still computes. Received buffers come from that stream's pool of the
// caching allocator: a link keeps what the items in flight on it need (a few at most: the pipeline
// holds as many blocks as it has stages), reused by its next receives.
//
// With src == dst the communicator has one rank that sends to itself: the same code on a
// machine with one GPU (GpuHandover::kNcclEverywhere, for tests).
//
// Tensors keep their dtype and strides (dense ones travel as their bytes; others are made
// contiguous first, as Tensor::to does); undefined ones stay undefined. Thread-safe (the DiT
// pipeline's links have one producer each).
//
// Not run yet on two GPUs. NCCL's documentation warns that communicators used concurrently can
// deadlock when their kernels cannot all run at once, and the layers split's ring runs two
// (a -> b, b -> a); each transfer here has both halves queued together and the receive waits
// only for the producer's work, but only a machine with several GPUs can show it holds
// (dit-handover=copy avoids NCCL).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/Event.h>

#include <memory>
#include <mutex>
#include <vector>

namespace la::parallel {

class NcclLink {
 public:
  // Both CUDA devices of this machine; throws std::invalid_argument otherwise,
  // std::runtime_error with NCCL's words when the communicator cannot be made.
  NcclLink(at::Device src, at::Device dst);
  ~NcclLink();
  NcclLink(const NcclLink&) = delete;
  NcclLink& operator=(const NcclLink&) = delete;

  // Replaces each defined *slot (on src, written by work queued on this thread's current
  // stream of src) by its copy on dst; returns the event on dst after which the copies are
  // complete. Throws std::runtime_error when NCCL fails.
  std::shared_ptr<c10::Event> transfer(const std::vector<at::Tensor*>& slots);

  at::Device src() const { return src_; }
  at::Device dst() const { return dst_; }

 private:
  struct Nccl;  // the communicators and the receiving stream (nccl.h stays out of this header)
  at::Device src_, dst_;
  std::unique_ptr<Nccl> nccl_;
  std::mutex lock_;
};

}  // namespace la::parallel
