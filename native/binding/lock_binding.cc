// An exclusive lock on a file, held until the process ends (the kernel drops it then, whatever
// the way it ends: kill -9 included). The server takes one on its data directory so that a second
// server started on the same directory refuses to run instead of sharing its state, spools and
// engines. OS glue, not core: there is nothing here for the core's tests.
#include <cerrno>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "registry.h"

namespace {

// lockFile(path, note): { ok: true, fd } once held (note written into the file; unlockFile(fd)
// lets it go), or { ok: false, holder: <the file's text> } when another holds it.
Napi::Value LockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString())
    throw Napi::TypeError::New(env, "lockFile expects (path: string, note: string)");
  std::string path = info[0].As<Napi::String>();
  std::string note = info[1].As<Napi::String>();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) throw Napi::Error::New(env, "cannot open " + path + ": " + std::strerror(errno));
  Napi::Object out = Napi::Object::New(env);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err != EWOULDBLOCK) {
      ::close(fd);
      throw Napi::Error::New(env, "cannot lock " + path + ": " + std::strerror(err));
    }
    std::string holder;
    char buf[512];
    ssize_t n = ::pread(fd, buf, sizeof buf, 0);
    if (n > 0) holder.assign(buf, static_cast<size_t>(n));
    ::close(fd);
    out.Set("ok", false);
    out.Set("holder", holder);
    return out;
  }
  // Held until unlockFile(fd) or the end of the process.
  if (::ftruncate(fd, 0) == 0) {
    ssize_t w = ::pwrite(fd, note.data(), note.size(), 0);
    (void)w;
  }
  out.Set("ok", true);
  out.Set("fd", fd);
  return out;
}

// lockDir(path): { ok: true, fd } once an exclusive lock on the directory itself is held, or
// { ok: false } when another holds it. The lock file can be removed while its holder runs (a new
// one of that name is then another file, lockable again); the directory cannot be replaced so.
Napi::Value LockDir(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "lockDir expects (path: string)");
  std::string path = info[0].As<Napi::String>();
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Napi::Error::New(env, "cannot open " + path + ": " + std::strerror(errno));
  Napi::Object out = Napi::Object::New(env);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err != EWOULDBLOCK) throw Napi::Error::New(env, "cannot lock " + path + ": " + std::strerror(err));
    out.Set("ok", false);
    return out;
  }
  out.Set("ok", true);
  out.Set("fd", fd);
  return out;
}

Napi::Value UnlockFile(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "unlockFile expects (fd: number)");
  ::close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("lockFile", Napi::Function::New(env, LockFile));
  exports.Set("unlockFile", Napi::Function::New(env, UnlockFile));
  exports.Set("lockDir", Napi::Function::New(env, LockDir));
}

roost::binding::Registrar registrar(Register);

}  // namespace
