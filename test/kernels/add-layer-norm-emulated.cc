// Runs native/kernels/add_layer_norm.cu's kernels on the CPU (simt.h) for one problem read from
// stdin, for test/nn/add-layer-norm.test.ts:
//   in:  h-type y-type z-type (float32|float16|bfloat16) rows cols eps blocks threads packs
//        hasBias hasDA — threads 0: the launcher's shape for cols (packs then ignored)
//        then h and y (rows×cols), w (cols), b (cols, if hasBias), dz (rows×cols), dA (if hasDA)
//   out: a line per array, "name v v …": the inputs as rounded to their types (h y w b dz dA),
//        then a z mean rstd dh dy dw db (dy: y's own gradient, = dh when y has h's type)
// or, for the launcher's choice of block shape alone:
//   in:  shape cols cols …        out: a line "cols packs threads" for each
#define SLM_KERNEL_EMULATION 1
#include "simt.h"
// clang-format off: the kernels see simt.h's built-ins
#include "../../native/kernels/add_layer_norm.cu"
// clang-format on

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <type_traits>

namespace {

namespace k = slm::kernels;

template <typename T>
struct Array {
  explicit Array(int64_t n)
      : n(n), p(static_cast<T*>(std::aligned_alloc(64, ((n * sizeof(T) + 63) / 64) * 64))) {}
  ~Array() { std::free(p); }
  Array(const Array&) = delete;
  Array& operator=(const Array&) = delete;
  void read() {
    for (int64_t i = 0; i < n; i++) {
      std::string v;  // strtof reads "inf", "-inf" and "nan", which operator>> refuses
      std::cin >> v;
      p[i] = k::fromFloat<T>(std::strtof(v.c_str(), nullptr));
    }
  }
  void print(const char* name) const {
    std::printf("%s", name);
    for (int64_t i = 0; i < n; i++) std::printf(" %.9g", k::toFloat(p[i]));
    std::printf("\n");
  }
  int64_t n;
  T* p;
};

struct Problem {
  int64_t rows, cols, blocks;
  float eps;
  int threads, packs;
  bool hasBias, hasDA;
};

template <typename Th, typename Ty, typename Tz>
int run(const Problem& q) {
  const int64_t n = q.rows * q.cols;
  Array<Th> h(n), w(q.cols), b(q.cols), dA(n), a(n), dh(n), dw(q.cols), db(q.cols);
  Array<Ty> y(n), dy(n);
  Array<Tz> z(n), dz(n);
  Array<float> mean(q.rows), rstd(q.rows), partial(q.blocks * 2 * q.cols);
  h.read();
  y.read();
  w.read();
  if (q.hasBias) b.read();
  dz.read();
  if (q.hasDA) dA.read();
  if (!std::cin) {
    std::cerr << "input ended early\n";
    return 2;
  }
  k::Shape s = q.threads == 0 ? k::shapeFor(q.cols) : k::Shape{q.packs, q.threads};
  if (s.threads % 32 != 0 || static_cast<int64_t>(4) * s.threads * s.packsPerThread < q.cols) {
    std::cerr << "threads must be a multiple of 32 and 4·threads·packs ≥ cols\n";
    return 2;
  }
  auto forward = [&](auto kernel) {
    simt::launch(static_cast<unsigned>(q.rows), s.threads, [&] {
      kernel(h.p, y.p, w.p, q.hasBias ? b.p : nullptr, q.cols, q.eps, a.p, z.p, mean.p, rstd.p);
    });
  };
  auto backward = [&](auto kernel) {
    Ty* dyOut = std::is_same_v<Th, Ty> ? nullptr : dy.p;
    simt::launch(static_cast<unsigned>(q.blocks), s.threads, [&] {
      kernel(dz.p, a.p, q.hasDA ? dA.p : nullptr, mean.p, rstd.p, w.p, q.rows, q.cols, dh.p, dyOut,
             partial.p);
    });
  };
  switch (s.packsPerThread) {
    case 1:
      forward(k::addLayerNormForwardKernel<Th, Ty, Tz, 1>);
      backward(k::addLayerNormBackwardKernel<Th, Ty, Tz, 1>);
      break;
    case 2:
      forward(k::addLayerNormForwardKernel<Th, Ty, Tz, 2>);
      backward(k::addLayerNormBackwardKernel<Th, Ty, Tz, 2>);
      break;
    case 4:
      forward(k::addLayerNormForwardKernel<Th, Ty, Tz, 4>);
      backward(k::addLayerNormBackwardKernel<Th, Ty, Tz, 4>);
      break;
    default: std::cerr << "packs must be 1, 2 or 4\n"; return 2;
  }
  simt::launch(static_cast<unsigned>((2 * q.cols + 31) / 32), 1024, [&] {
    k::addLayerNormColumnSumKernel<Th>(partial.p, q.blocks, q.cols, dw.p,
                                       q.hasBias ? db.p : nullptr);
  });
  h.print("h");
  y.print("y");
  w.print("w");
  if (q.hasBias) b.print("b");
  dz.print("dz");
  if (q.hasDA) dA.print("dA");
  a.print("a");
  z.print("z");
  mean.print("mean");
  rstd.print("rstd");
  dh.print("dh");
  if (std::is_same_v<Th, Ty>)
    dh.print("dy");
  else
    dy.print("dy");
  dw.print("dw");
  if (q.hasBias) db.print("db");
  return 0;
}

template <typename Th, typename Ty>
int withZ(const std::string& z, const Problem& q) {
  if (z == "float32") return run<Th, Ty, float>(q);
  if (z == "float16") return run<Th, Ty, __half>(q);
  if (z == "bfloat16") return run<Th, Ty, __nv_bfloat16>(q);
  std::cerr << "unknown z type " << z << "\n";
  return 2;
}

template <typename Th>
int withY(const std::string& y, const std::string& z, const Problem& q) {
  if (y == "float32") return withZ<Th, float>(z, q);
  if (y == "float16") return withZ<Th, __half>(z, q);
  if (y == "bfloat16") return withZ<Th, __nv_bfloat16>(z, q);
  std::cerr << "unknown y type " << y << "\n";
  return 2;
}

}  // namespace

int main() {
  std::string th, ty, tz;
  if (std::cin.peek() == 's') {
    std::string word;
    std::cin >> word;
    for (int64_t cols; std::cin >> cols;) {
      k::Shape s = k::shapeFor(cols);
      std::printf("%lld %d %d\n", static_cast<long long>(cols), s.packsPerThread, s.threads);
    }
    return 0;
  }
  Problem q{};
  int hasBias = 0, hasDA = 0;
  if (!(std::cin >> th >> ty >> tz >> q.rows >> q.cols >> q.eps >> q.blocks >> q.threads >>
        q.packs >> hasBias >> hasDA) ||
      q.rows < 1 || q.cols < 4 || q.cols % 4 != 0 || q.blocks < 1) {
    std::cerr << "expected: h-type y-type z-type rows cols eps blocks threads packs hasBias hasDA "
                 "(cols a multiple of 4), then the arrays\n";
    return 2;
  }
  q.hasBias = hasBias != 0;
  q.hasDA = hasDA != 0;
  if (th == "float32") return withY<float>(ty, tz, q);
  if (th == "float16") return withY<__half>(ty, tz, q);
  if (th == "bfloat16") return withY<__nv_bfloat16>(ty, tz, q);
  std::cerr << "unknown h type " << th << "\n";
  return 2;
}
