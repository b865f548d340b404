// graphc CUDA emulation: just enough of CUDA C++ to run generated kernels on the CPU.
// A block's threads run one after another; a kernel that synchronises (__syncthreads, warp
// shuffles) runs them as cooperative fibers (ucontext): each runs until it reaches a barrier,
// and the barrier releases when every live thread of the block (or warp) has reached it.
// Only C headers: the C++ ones would triple g++'s time on a typical program.
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

extern "C" {  // the math the prelude calls (libm; g++ knows them as builtins)
#define GCEMU_MATH(name) float name##f(float); double name(double);
GCEMU_MATH(exp) GCEMU_MATH(log) GCEMU_MATH(tanh) GCEMU_MATH(sqrt) GCEMU_MATH(fabs)
GCEMU_MATH(sin) GCEMU_MATH(cos) GCEMU_MATH(erf) GCEMU_MATH(erfc) GCEMU_MATH(log1p)
float powf(float, float);
double pow(double, double);
}

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__ __restrict

struct uint3 { unsigned x, y, z; };
struct dim3 {
  unsigned x, y, z;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

namespace gcemu {
enum State { RUNNING, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };
struct Fiber {
  ucontext_t context;
  State state;
  uint3 index;
};
static uint3 thread_index, block_index;
static dim3 block_dim, grid_dim;
static Fiber* fibers = nullptr;  // grown to the largest block seen
static char* stacks = nullptr;
static int capacity = 0;
static ucontext_t scheduler;
static int current = -1;  // the running fiber, -1 outside fiber mode
static void (*body)(void**);
static void** body_args;
static const char* error = nullptr;
static unsigned char exchange[32][32][8];  // warp shuffles: [warp][lane] value bytes
static const size_t STACK = 256 * 1024;

inline int linear(uint3 t) { return (int)(t.x + block_dim.x * (t.y + block_dim.y * t.z)); }

inline void wait(State why) {
  if (current < 0) {
    error = "a kernel without fibers reached a barrier (render bug)";
    return;
  }
  Fiber& me = fibers[current];
  me.state = why;
  swapcontext(&me.context, &scheduler);
}

static void entry() {
  body(body_args);
  fibers[current].state = DONE;  // uc_link returns to the scheduler
}

inline bool release_warps(int count) {
  bool released = false;
  for (int w = 0; w * 32 < count; ++w) {
    bool all = true, any = false;
    for (int t = w * 32; t < count && t < w * 32 + 32; ++t) {
      if (fibers[t].state == DONE) continue;
      if (fibers[t].state != AT_WARP_BARRIER) all = false;
      else any = true;
    }
    if (all && any) {
      for (int t = w * 32; t < count && t < w * 32 + 32; ++t)
        if (fibers[t].state == AT_WARP_BARRIER) fibers[t].state = RUNNING;
      released = true;
    }
  }
  return released;
}

inline bool release_block(int count) {
  bool any = false;
  for (int t = 0; t < count; ++t) {
    if (fibers[t].state == DONE) continue;
    if (fibers[t].state != AT_BLOCK_BARRIER) return false;
    any = true;
  }
  for (int t = 0; t < count; ++t)
    if (fibers[t].state == AT_BLOCK_BARRIER) fibers[t].state = RUNNING;
  return any;
}

inline void run_fibers(int count) {
  if (capacity < count) {
    free(fibers);
    free(stacks);
    fibers = (Fiber*)calloc(count, sizeof(Fiber));
    stacks = (char*)malloc((size_t)count * STACK);
    capacity = count;
  }
  for (int t = 0; t < count; ++t) {
    Fiber& f = fibers[t];
    f.state = RUNNING;
    f.index = uint3{t % block_dim.x, (t / block_dim.x) % block_dim.y,
                    t / (block_dim.x * block_dim.y)};
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = &stacks[(size_t)t * STACK];
    f.context.uc_stack.ss_size = STACK;
    f.context.uc_link = &scheduler;
    makecontext(&f.context, entry, 0);
  }
  for (;;) {
    bool ran = false;
    for (int t = 0; t < count; ++t) {
      if (fibers[t].state != RUNNING) continue;
      current = t;
      thread_index = fibers[t].index;
      swapcontext(&scheduler, &fibers[t].context);
      ran = true;
    }
    current = -1;
    if (ran) continue;
    bool done = true;
    for (int t = 0; t < count; ++t) done = done && fibers[t].state == DONE;
    if (done || error) return;
    if (!release_warps(count) && !release_block(count)) {
      error = "threads of a block wait at different barriers (deadlock)";
      return;
    }
  }
}

// runs the grid; returns 0, or 1 with the reason in gcemu_error()
inline int launch(dim3 grid, dim3 block, int cooperative, void (*kernel)(void**), void** args) {
  error = nullptr;
  grid_dim = grid;
  block_dim = block;
  body = kernel;
  body_args = args;
  int count = (int)(block.x * block.y * block.z);
  if (count > 1024) {
    error = "more than 1024 threads in a block";
    return 1;
  }
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        block_index = uint3{bx, by, bz};
        if (cooperative) {
          run_fibers(count);
        } else {
          for (int t = 0; t < count && !error; ++t) {
            thread_index = uint3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
            kernel(args);
          }
        }
        if (error) return 1;
      }
  return 0;
}
}  // namespace gcemu

extern "C" const char* gcemu_error() { return gcemu::error; }

#define threadIdx (gcemu::thread_index)
#define blockIdx (gcemu::block_index)
#define blockDim (gcemu::block_dim)
#define gridDim (gcemu::grid_dim)

inline void __syncthreads() { gcemu::wait(gcemu::AT_BLOCK_BARRIER); }
inline void __syncwarp(unsigned = 0xffffffffu) { gcemu::wait(gcemu::AT_WARP_BARRIER); }

template <class T> T __shfl_down_sync(unsigned, T v, unsigned delta, int = 32) {
  int t = gcemu::linear(threadIdx), warp = t / 32, lane = t % 32;
  memcpy(gcemu::exchange[warp][lane], &v, sizeof(T));
  __syncwarp();
  T out = v;
  int count = (int)(blockDim.x * blockDim.y * blockDim.z);
  if (lane + (int)delta < 32 && t + (int)delta < count)
    memcpy(&out, gcemu::exchange[warp][lane + delta], sizeof(T));
  __syncwarp();
  return out;
}

template <class T> T atomicAdd(T* p, T v) {  // one CPU thread runs the grid: plain adds
  T old = *p;
  *p = old + v;
  return old;
}

inline float __int_as_float(int v) { float f; memcpy(&f, &v, 4); return f; }
inline double __longlong_as_double(long long v) { double d; memcpy(&d, &v, 8); return d; }
