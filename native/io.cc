// Tensor bytes to and from files, without a round trip through JS arrays. The container format
// (safetensors: 8-byte little-endian header length, a JSON header, then the raw bytes) is
// assembled in lib/io/safetensors.ts; this file only moves bytes.
#include <ATen/ops/empty.h>
#include <c10/core/GradMode.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tensor.h"

namespace slm {
namespace {

std::string sysError(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

bool writeAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// A file written beside its destination and renamed onto it once complete. Until commit(), the
// destructor closes the descriptor and removes the partial file, whatever ended the write (a full
// disk, a tensor that cannot be copied to the host): no half-written file, no descriptor left open.
class PartialFile {
 public:
  explicit PartialFile(const std::string& path)
      : path_(path), partial_(path + ".partial-" + std::to_string(::getpid())) {
    fd_ = ::open(partial_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  ~PartialFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(partial_.c_str());
  }
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;
  int fd() const { return fd_; }
  // fsync, close and rename onto the destination; "" or what failed
  std::string commit() {
    if (::fsync(fd_) != 0) return sysError("cannot write", path_);
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return sysError("cannot write", path_);
    if (::rename(partial_.c_str(), path_.c_str()) != 0)
      return sysError("cannot rename onto", path_);
    committed_ = true;
    return "";
  }

 private:
  std::string path_, partial_;
  int fd_ = -1;
  bool committed_ = false;
};

// writeTensorFile(path, prefix: Uint8Array, tensors): writes prefix (the encoded header) then
// each tensor's bytes (contiguous, on the CPU, one tensor at a time) to a file beside path, fsyncs
// it and renames it onto path: the file appears whole or not at all, and durably.
Napi::Value WriteTensorFile(const Napi::CallbackInfo& info) {
  std::string path = stringArg(info, 0, "path");
  if (info.Length() < 2 || !info[1].IsTypedArray()) {
    throw Napi::TypeError::New(info.Env(), "expected a Uint8Array for argument 'prefix'");
  }
  // the tensors first: reading that list can run JS (a getter) that detaches the prefix's buffer,
  // so the prefix's address and length are taken after it
  std::vector<at::Tensor> tensors = tensorListArg(info, 2, "tensors");
  Napi::Uint8Array prefix = info[1].As<Napi::Uint8Array>();
  PartialFile file(path);
  if (file.fd() < 0) throw Napi::Error::New(info.Env(), sysError("cannot create", path));
  bool ok = writeAll(file.fd(), prefix.Data(), prefix.ByteLength());
  at::NoGradGuard noGrad;
  for (size_t i = 0; ok && i < tensors.size(); i++) {
    at::Tensor host = tensors[i].detach().to(at::kCPU).contiguous();
    ok = writeAll(file.fd(), host.data_ptr(), host.numel() * host.element_size());
  }
  std::string err = ok ? file.commit() : sysError("cannot write", path);
  if (!err.empty()) throw Napi::Error::New(info.Env(), err);
  return info.Env().Undefined();
}

// readTensorFile(path, entries: [offset, dtype, shape][], device) → tensors. Each entry's bytes
// start at `offset` (absolute, in bytes); the caller has checked they lie inside the file.
Napi::Value ReadTensorFile(const Napi::CallbackInfo& info) {
  std::string path = stringArg(info, 0, "path");
  if (info.Length() < 2 || !info[1].IsArray()) {
    throw Napi::TypeError::New(info.Env(), "expected an array for argument 'entries'");
  }
  Napi::Array entries = info[1].As<Napi::Array>();
  c10::Device device = deviceArg(info, 2, "device");
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Napi::Error::New(info.Env(), sysError("cannot open", path));
  std::vector<at::Tensor> out;
  try {
    for (uint32_t k = 0; k < entries.Length(); k++) {
      Napi::Array e = entries.Get(k).As<Napi::Array>();
      int64_t offset = static_cast<int64_t>(e.Get(0u).As<Napi::Number>().DoubleValue());
      at::ScalarType dtype = parseDtype(e.Get(1u).As<Napi::String>().Utf8Value());
      if (dtype == at::ScalarType::Undefined)
        throw Napi::TypeError::New(info.Env(),
                                   "readTensorFile: unknown dtype in entry " + std::to_string(k));
      Napi::Array shapeArr = e.Get(2u).As<Napi::Array>();
      std::vector<int64_t> shape(shapeArr.Length());
      for (uint32_t d = 0; d < shapeArr.Length(); d++) {
        shape[d] = static_cast<int64_t>(shapeArr.Get(d).As<Napi::Number>().DoubleValue());
      }
      at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
      size_t n = t.numel() * t.element_size();
      char* p = static_cast<char*>(t.data_ptr());
      size_t done = 0;
      while (done < n) {
        ssize_t r = ::pread(fd, p + done, n - done, offset + static_cast<int64_t>(done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
          throw Napi::Error::New(info.Env(), r == 0 ? "file '" + path + "' ends before tensor " +
                                                          std::to_string(k) + " does"
                                                    : sysError("cannot read", path));
        done += static_cast<size_t>(r);
      }
      out.push_back(device.is_cpu() ? t : t.to(device));
    }
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return wrapList(info.Env(), out);
}

}  // namespace

void initIo(Napi::Env env, Napi::Object exports) {
  define(env, exports, "writeTensorFile", WriteTensorFile);
  define(env, exports, "readTensorFile", ReadTensorFile);
}

}  // namespace slm
