/* A diagnostic to LD_PRELOAD into a process that crashes without a usable stack (a call through a
 * null function pointer leaves the program counter at 0, where debuggers find no unwind
 * information). On SIGSEGV it prints the faulting address, the program counter, and the words on
 * top of the stack named by dladdr: after `call 0` the first of them is the caller's return
 * address. At load it prints which library resolves _Unwind_RaiseException (libgcc_s or
 * GStreamer's libunwind), the other suspect of such crashes. Not part of the build: scripts/
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

__attribute__((constructor)) static void install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigaction(SIGSEGV, &sa, NULL);
  name("_Unwind_RaiseException from", dlsym(RTLD_DEFAULT, "_Unwind_RaiseException"));
}
