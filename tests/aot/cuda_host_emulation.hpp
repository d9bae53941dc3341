// The CUDA dialect of the generated kernels (compiler/codegen_cuda.hpp),
// emulated on the host, so that whole kernels run against the interpreter
// on a machine without a GPU: the grid-stride loops, the warp-per-row and
// block-per-row layouts with their shuffle and shared-memory reductions, the
// quad and box accesses with their alignment fallbacks, the 16-bit storage
// and the atomic total. Only the hardware is missing: the device math is the
// host's libm, and timing-dependent behaviour is not explored.
//
// A test includes this first, then a generated CUDA source, compiles both
// with the host compiler and calls launch(). Blocks run one after another;
// the threads of a block are fibers (ucontext) on one host thread, switched
// at every __syncthreads and warp shuffle, so a warp's lanes exchange values
// in lockstep as on the GPU, deterministically for a given scheduling seed. A rendezvous that not every
// thread reaches (a shuffle or __syncthreads under divergent control flow:
// undefined on a GPU) leaves nothing runnable: the launch reports it instead
// of hanging.
#pragma once

// The standard headers the generated source uses, before the CUDA macros
// below change what the library headers see.
#include <ucontext.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <utility>
#include <stdexcept>
#include <vector>

namespace lossforge_emulation {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

// One CUDA thread: a fiber with its own stack.
struct Fiber {
  ucontext_t context;
  std::unique_ptr<char[]> stack;
  Dim3 index;
  bool waiting = false, done = false;
};

// Threads that must all arrive before any goes on: a warp's lanes at a
// shuffle, a block's threads at __syncthreads.
struct Rendezvous {
  std::vector<Fiber*> waiting;
};

struct Warp {
  Rendezvous rendezvous;
  double lanes[32] = {};
};

// The running block: set by launch().
struct BlockState {
  std::vector<std::unique_ptr<Fiber>> fibers;
  Rendezvous barrier;
  std::vector<Warp> warps;
  ucontext_t scheduler;
  Fiber* current = nullptr;
  // A partial shuffle mask (the generated code never uses one) or a
  // misaligned vector store: fails the launch.
  bool misuse = false;
};

inline Dim3 block_index, block_dim, grid_dim;
inline BlockState block;

// Parks the current fiber until `count` fibers have arrived at `point`.
inline void arrive(Rendezvous& point, size_t count) {
  Fiber* self = block.current;
  if (point.waiting.size() + 1 == count) {
    for (Fiber* f : point.waiting) f->waiting = false;
    point.waiting.clear();
    return;
  }
  point.waiting.push_back(self);
  self->waiting = true;
  swapcontext(&self->context, &block.scheduler);
}

template <class T>
T shuffle_xor(unsigned mask, T value, int lane_mask) {
  if (mask != 0xffffffffu) block.misuse = true;
  const unsigned lane = block.current->index.x % 32;
  Warp& warp = block.warps[block.current->index.x / 32];
  arrive(warp.rendezvous, 32);  // every lane has read the previous exchange
  warp.lanes[lane] = double(value);  // exact for float and double
  arrive(warp.rendezvous, 32);  // every lane has written
  return T(warp.lanes[lane ^ unsigned(lane_mask)]);
}

inline void syncthreads() { arrive(block.barrier, block.fibers.size()); }

template <class Args>
struct Entry {
  static inline void (*kernel)(Args) = nullptr;
  static inline const Args* args = nullptr;
  static void run() {
    kernel(*args);
    block.current->done = true;
  }  // returns to uc_link: the scheduler
};

// Runs kernel<<<grid, threads>>>(args); 0 on success, 1 when the threads of
// a block deadlocked at a rendezvous or block.misuse was set. A thread runs
// until its next rendezvous; `seed` picks the order in which runnable threads
// take their turns (0: thread order), so that a shared-memory race between
// two rendezvous -- a read of what another warp has not yet written -- shows
// under some order.
template <class Args>
int launch(void (*kernel)(Args), const Args& args, unsigned grid, unsigned threads, unsigned long long seed = 0) {
  constexpr size_t kStackBytes = 256 * 1024;
  if (threads == 0 || threads % 32 != 0)
    throw std::invalid_argument("emulated launch: threads must be a multiple of 32");
  Entry<Args>::kernel = kernel;
  Entry<Args>::args = &args;
  grid_dim = {grid, 1, 1};
  block_dim = {threads, 1, 1};
  int status = 0;
  for (unsigned b = 0; b < grid && status == 0; ++b) {
    block_index = {b, 1, 1};
    block.fibers.clear();
    block.barrier.waiting.clear();
    block.warps = std::vector<Warp>(threads / 32);
    for (unsigned t = 0; t < threads; ++t) {
      auto fiber = std::make_unique<Fiber>();
      fiber->index = {t, 1, 1};
      fiber->stack.reset(new char[kStackBytes]);
      getcontext(&fiber->context);
      fiber->context.uc_stack.ss_sp = fiber->stack.get();
      fiber->context.uc_stack.ss_size = kStackBytes;
      fiber->context.uc_link = &block.scheduler;
      makecontext(&fiber->context, &Entry<Args>::run, 0);
      block.fibers.push_back(std::move(fiber));
    }
    // Turns until every thread is done, or none can run.
    std::vector<Fiber*> order;
    for (const auto& fiber : block.fibers) order.push_back(fiber.get());
    for (bool progress = true; progress;) {
      progress = false;
      for (size_t i = order.size(); seed && i > 1; --i) {  // Fisher-Yates with xorshift64
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        std::swap(order[i - 1], order[seed % i]);
      }
      for (Fiber* fiber : order)
        if (!fiber->done && !fiber->waiting) {
          block.current = fiber;
          swapcontext(&block.scheduler, &fiber->context);
          progress = true;
        }
    }
    for (const auto& fiber : block.fibers)
      if (!fiber->done) status = 1;  // parked at a rendezvous the others never reach
    if (block.misuse) status = 1;
    block.misuse = false;
    block.current = nullptr;
  }
  return status;
}

template <class To, class From>
To bit_cast(From from) {
  To to;
  std::memcpy(&to, &from, sizeof to);
  return to;
}

}  // namespace lossforge_emulation

// ---- the dialect -------------------------------------------------------------

#define __CUDACC__ 1
#define __CUDA_ARCH__ 900
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static  // blocks run one at a time, so one copy serves them all
#define LOSSFORGE_CUDA_HOST_EMULATION 1  // storage_types.hpp: no cvt instructions

#define threadIdx (::lossforge_emulation::block.current->index)
#define blockIdx (::lossforge_emulation::block_index)
#define blockDim (::lossforge_emulation::block_dim)
#define gridDim (::lossforge_emulation::grid_dim)

inline void __syncthreads() { lossforge_emulation::syncthreads(); }
template <class T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask) {
  return lossforge_emulation::shuffle_xor(mask, value, lane_mask);
}
inline double atomicAdd(double* address, double value) {  // one host thread: no race
  const double old = *address;
  *address = old + value;
  return old;
}
inline double __longlong_as_double(long long x) { return lossforge_emulation::bit_cast<double>(x); }
inline unsigned __float_as_uint(float x) { return lossforge_emulation::bit_cast<unsigned>(x); }
inline float __uint_as_float(unsigned x) { return lossforge_emulation::bit_cast<float>(x); }

struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) double2 {
  double x, y;
};
struct alignas(8) ushort4 {
  unsigned short x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }
inline ushort4 make_ushort4(unsigned short x, unsigned short y, unsigned short z, unsigned short w) {
  return {x, y, z, w};
}
// A streaming store is a store. A misaligned vector store would fault on a
// GPU: it fails the launch here.
template <class V>
void __stcs(V* address, V value) {
  if (reinterpret_cast<unsigned long long>(address) % alignof(V) != 0) lossforge_emulation::block.misuse = true;
  std::memcpy(static_cast<void*>(address), &value, sizeof value);
}
