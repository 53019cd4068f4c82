/* A diagnostic to LD_PRELOAD into a process that crashes without a usable stack (a call through a
 * null function pointer leaves the program counter at 0, where debuggers find no unwind
 * information). On SIGSEGV it prints the faulting address, the program counter, and the words on
 * top of the stack named by dladdr: after `call 0` the first of them is the caller's return
 * address. At load it prints which library resolves _Unwind_RaiseException (libgcc_s or
 * GStreamer's libunwind), the other suspect of such crashes, and from then on it names every C++
 * exception thrown (its type and the library that threw it: every __cxa_throw and every
 * _Unwind_RaiseException, which libraries with a static libstdc++ call directly), passing each on
 * to the same function the process would have used. Not part of the build: scripts/
 * gpu-figures.sh compiles it on a GPU machine when the demo line crashes:
 *
 *   cc -shared -fPIC -o /tmp/segv_report.so tools/diagnostics/segv_report.c -ldl
 *   LD_PRELOAD=/tmp/segv_report.so gst-launch-1.0 --no-fault ...
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

static void name(const char* what, void* address) {
  Dl_info info;
  memset(&info, 0, sizeof info);
  /* The offset from the file's base is what `addr2line -f -e FILE OFFSET` takes. */
  if (address && dladdr(address, &info) && info.dli_fname)
    fprintf(stderr, "segv_report: %s %p = %s+0x%lx (%s)\n", what, address, info.dli_fname,
            (unsigned long)((uintptr_t)address - (uintptr_t)info.dli_fbase),
            info.dli_sname ? info.dli_sname : "no symbol");
  else
    fprintf(stderr, "segv_report: %s %p\n", what, address);
}

static void on_segv(int sig, siginfo_t* si, void* context) {
  ucontext_t* uc = (ucontext_t*)context;
  void** sp = (void**)uc->uc_mcontext.gregs[REG_RSP];
  fprintf(stderr, "segv_report: signal %d at address %p, thread %ld\n", sig, si->si_addr, (long)gettid());
  name("pc", (void*)uc->uc_mcontext.gregs[REG_RIP]);
  for (int i = 0; i < 16; ++i) {
    char what[32];
    snprintf(what, sizeof what, "stack[%d]", i);
    name(what, sp[i]);
  }
  _exit(128 + sig);
}

/* At most this many calls of each are named: a process that throws in a loop stays readable. A
 * throw through a shared libstdc++ shows twice, as __cxa_throw #n and then _Unwind_RaiseException
 * #m from libstdc++; a static libstdc++ (cuBLAS, cuBLASLt, CUPTI) shows as the second only. */
enum { kCallsNamed = 64 };
static int cxa_throws, raises;

/* The first definition after this library in the global lookup order (what the process would
 * use), else `library`'s, already loaded: GStreamer loads a plugin's libstdc++ outside the global
 * scope, where RTLD_NEXT does not look. */
static void* real_symbol(const char* symbol, const char* library) {
  void* f = dlsym(RTLD_NEXT, symbol);
  if (!f) {
    void* handle = dlopen(library, RTLD_LAZY | RTLD_NOLOAD);
    if (handle) f = dlsym(handle, symbol);
  }
  if (!f) {
    fprintf(stderr, "segv_report: no %s after the preload, nor in %s\n", symbol, library);
    _exit(127);
  }
  return f;
}

typedef void (*cxa_throw_fn)(void*, void*, void (*)(void*));
void __cxa_throw(void* object, void* type, void (*destroy)(void*)) {
  static cxa_throw_fn real;
  if (!real) real = (cxa_throw_fn)real_symbol("__cxa_throw", "libstdc++.so.6");
  if (cxa_throws < kCallsNamed) {
    /* std::type_info: a vtable pointer, then the mangled name. */
    const char* mangled = type ? ((const char* const*)type)[1] : "?";
    char what[160];
    snprintf(what, sizeof what, "__cxa_throw #%d of %s, from", ++cxa_throws, mangled ? mangled : "?");
    name(what, __builtin_return_address(0));
  }
  real(object, type, destroy);
  __builtin_unreachable();
}

typedef int (*raise_fn)(void*);
int _Unwind_RaiseException(void* exception) {
  static raise_fn real;
  if (!real) real = (raise_fn)real_symbol("_Unwind_RaiseException", "libgcc_s.so.1");
  if (raises < kCallsNamed) {
    char what[64];
    snprintf(what, sizeof what, "_Unwind_RaiseException #%d, from", ++raises);
    name(what, __builtin_return_address(0));
  }
  const int code = real(exception);
  /* Only a failure returns (no handler: std::terminate follows). */
  fprintf(stderr, "segv_report: _Unwind_RaiseException returned %d\n", code);
  return code;
}

__attribute__((constructor)) static void install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigaction(SIGSEGV, &sa, NULL);
  name("_Unwind_RaiseException from", dlsym(RTLD_NEXT, "_Unwind_RaiseException"));
  name("_Unwind_Resume from", dlsym(RTLD_NEXT, "_Unwind_Resume"));
}
