// graphc CUDA prelude: helpers every generated kernel may use. Compiled by NVRTC for the GPU
// and, after backends/cuda/emulate.h, by g++ for the CPU emulation (cuda-emulated).
#define GC_DEV __device__ __forceinline__

GC_DEV float gc_exp(float x) { return expf(x); }
GC_DEV double gc_exp(double x) { return exp(x); }
GC_DEV float gc_log(float x) { return logf(x); }
GC_DEV double gc_log(double x) { return log(x); }
GC_DEV float gc_tanh(float x) { return tanhf(x); }
GC_DEV double gc_tanh(double x) { return tanh(x); }
GC_DEV float gc_sqrt(float x) { return sqrtf(x); }
GC_DEV double gc_sqrt(double x) { return sqrt(x); }
GC_DEV float gc_fabs(float x) { return fabsf(x); }
GC_DEV double gc_fabs(double x) { return fabs(x); }
GC_DEV float gc_pow(float x, float y) { return powf(x, y); }
GC_DEV double gc_pow(double x, double y) { return pow(x, y); }
GC_DEV float gc_sin(float x) { return sinf(x); }
GC_DEV double gc_sin(double x) { return sin(x); }
GC_DEV float gc_cos(float x) { return cosf(x); }
GC_DEV double gc_cos(double x) { return cos(x); }
GC_DEV float gc_erf(float x) { return erff(x); }
GC_DEV double gc_erf(double x) { return erf(x); }
GC_DEV float gc_erfc(float x) { return erfcf(x); }
GC_DEV double gc_erfc(double x) { return erfc(x); }
GC_DEV float gc_log1p(float x) { return log1pf(x); }
GC_DEV double gc_log1p(double x) { return log1p(x); }

// numpy's forms: sigmoid never overflows; softplus is logaddexp(0, x)
template <class T> GC_DEV T gc_sigmoid(T a) {
  T e = gc_exp(-gc_fabs(a));
  return (a >= T(0) ? T(1) : e) / (T(1) + e);
}
template <class T> GC_DEV T gc_softplus(T a) {
  if (a == T(0)) return T(0.6931471805599453);
  if (a < T(0)) return gc_log1p(gc_exp(a));
  if (a > T(0)) return a + gc_log1p(gc_exp(-a));
  return a;  // nan
}
// maximum/minimum propagate nan, as numpy's
template <class T> GC_DEV T gc_max(T a, T b) { return a != a ? a : (b != b ? b : (a > b ? a : b)); }
template <class T> GC_DEV T gc_min(T a, T b) { return a != a ? a : (b != b ? b : (a < b ? a : b)); }
template <class T> GC_DEV T gc_ipow(T base, T e) {  // integer power, e >= 0
  T out = 1;
  for (; e > 0; e >>= 1) {
    if (e & 1) out *= base;
    base *= base;
  }
  return out;
}
template <class I> GC_DEV I gc_pmod(I x, I m) {  // python's x % m for m > 0
  I r = x % m;
  return r < 0 ? r + m : r;
}
template <class I> GC_DEV I gc_clamp(I x, I lo, I hi) { return x < lo ? lo : (x > hi ? hi : x); }
// the first index python's slice(start, _, step).indices(n) visits, for a given start
GC_DEV long long gc_slice_start(long long s, long long n, bool forward) {
  if (s < 0) s += n;
  return forward ? gc_clamp(s, 0LL, n) : gc_clamp(s, -1LL, n - 1);
}
GC_DEV float gc_inf(float) { return __int_as_float(0x7f800000); }
GC_DEV double gc_inf(double) { return __longlong_as_double(0x7ff0000000000000LL); }
GC_DEV int gc_inf(int) { return 2147483647; }
GC_DEV long long gc_inf(long long) { return 9223372036854775807LL; }
GC_DEV bool gc_inf(bool) { return true; }
GC_DEV float gc_nan(float) { return __int_as_float(0x7fc00000); }
GC_DEV double gc_nan(double) { return __longlong_as_double(0x7ff8000000000000LL); }
template <class T> GC_DEV T gc_lowest(T x) { return -gc_inf(x) - (T(0.5) == T(0) ? T(1) : T(0)); }
GC_DEV bool gc_lowest(bool) { return false; }

// warp and block reductions: warp shuffles, then one partial per warp in shared memory
struct gc_sum {
  template <class T> GC_DEV T operator()(T a, T b) const { return a + b; }
};
struct gc_maxop {
  template <class T> GC_DEV T operator()(T a, T b) const { return gc_max(a, b); }
};
template <class T> GC_DEV T gc_shfl_down(T v, int d) { return __shfl_down_sync(0xffffffffu, v, d); }
GC_DEV bool gc_shfl_down(bool v, int d) { return __shfl_down_sync(0xffffffffu, (int)v, d) != 0; }
template <class T, class Op> GC_DEV T gc_warp_reduce(T v, Op op) {
  for (int d = 16; d > 0; d >>= 1) v = op(v, gc_shfl_down(v, d));
  return v;
}
// every thread of the block calls it (blockDim.x a multiple of 32); all get the result
template <class T, class Op> __device__ T gc_block_reduce(T v, Op op, T identity) {
  __shared__ T partial[32];
  __shared__ T result;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = gc_warp_reduce(v, op);
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? partial[lane] : identity;
    v = gc_warp_reduce(v, op);
    if (lane == 0) result = v;
  }
  __syncthreads();
  v = result;
  __syncthreads();  // partial and result are reused by the next call
  return v;
}

// scatter-adds (pad_grad, take_grad, pool_scatter): bool adds are a logical or
GC_DEV void gc_atomic_add(float* p, float v) { atomicAdd(p, v); }
GC_DEV void gc_atomic_add(double* p, double v) { atomicAdd(p, v); }
GC_DEV void gc_atomic_add(int* p, int v) { atomicAdd(p, v); }
GC_DEV void gc_atomic_add(long long* p, long long v) {
  atomicAdd((unsigned long long*)p, (unsigned long long)v);
}
GC_DEV void gc_atomic_add(bool* p, bool v) {
  if (v) *p = true;  // every writer writes the same value
}

// a kernel that meets bad input records (kernel number + 1, kind) and the runtime raises
GC_DEV void gc_fail(int* status, int kernel, int kind) {
  status[0] = kernel + 1;
  status[1] = kind;
}
