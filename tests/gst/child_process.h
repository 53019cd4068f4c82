// A program run by a test as a child process (a server, an example script):
// its stdout and stderr go to a file, it is killed when the test process dies
// (so a crashed test leaves nothing behind), and the destructor stops it.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/common/temp_dir.h"

namespace la::test {

// "exit status N" or "signal N" of a wait status.
inline std::string describe_wait_status(std::optional<int> status) {
  if (!status) return "no wait status";
  return WIFEXITED(*status) ? "exit status " + std::to_string(WEXITSTATUS(*status))
                            : "signal " + std::to_string(WTERMSIG(*status));
}

class ChildProcess {
 public:
  // `env`: variables set (name, value) in the child on top of the test's environment.
  ChildProcess(std::vector<std::string> argv, std::string output_file,
               std::vector<std::pair<std::string, std::string>> env = {})
      : argv_(std::move(argv)), out_(std::move(output_file)), env_(std::move(env)) {}
  ~ChildProcess() { stop(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // "" once it runs, or why not.
  std::string start() {
    if (argv_.empty()) return "no program";
    if (access(argv_[0].c_str(), X_OK) != 0) return argv_[0] + ": not executable";
    std::vector<const char*> argv;
    for (const std::string& a : argv_) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    // The child's environment, made here: setenv() after fork could wait forever for glibc's
    // environment lock, had another thread of this process held it at the fork.
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e) {
      const std::string entry = *e;
      bool replaced = false;
      for (const auto& [name, value] : env_) replaced = replaced || entry.rfind(name + "=", 0) == 0;
      if (!replaced) env_strings.push_back(entry);
    }
    for (const auto& [name, value] : env_) env_strings.push_back(name + "=" + value);
    std::vector<const char*> envp;
    for (const std::string& e : env_strings) envp.push_back(e.c_str());
    envp.push_back(nullptr);
    // fork + exec rather than posix_spawn: the child asks for SIGKILL when this process dies.
    // Between fork and exec only async-signal-safe calls, hence everything prepared before.
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) return argv_[0] + ": fork failed";
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      const int fd = open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
      execve(argv[0], const_cast<char**>(argv.data()), const_cast<char**>(envp.data()));
      _exit(127);
    }
    return "";
  }

  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    const pid_t reaped = waitpid(pid_, &status, WNOHANG);
    if (reaped == 0) return true;
    if (reaped == pid_) status_ = status;  // else (-1) someone else reaped it: no status
    pid_ = -1;
    return false;
  }

  // Waits up to `limit` for it to end; its wait status, or nullopt while it still runs (or if it
  // never started).
  std::optional<int> wait(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (running()) {
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return status_;
  }

  // Waits up to `limit` for `text` in its output; false if it ended or the time ran out first.
  bool wait_for_output(const std::string& text, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (output().find(text) != std::string::npos) return true;
      if (!running() || std::chrono::steady_clock::now() >= deadline)
        return output().find(text) != std::string::npos;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  void signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }

  // `sig` (graceful), then SIGKILL after `grace`.
  void stop(int sig = SIGTERM, std::chrono::milliseconds grace = std::chrono::seconds(5)) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    if (wait(grace)) return;
    kill(pid_, SIGKILL);
    int status = 0;
    if (waitpid(pid_, &status, 0) == pid_) status_ = status;
    pid_ = -1;
  }

  std::string output() const { return read_bytes(out_); }
  // The wait status once it ended (nullopt before, or if it never started).
  std::optional<int> status() const { return status_; }
  // Its exit status; -1 while it runs, if it never started or if a signal ended it.
  int exit_status() const { return status_ && WIFEXITED(*status_) ? WEXITSTATUS(*status_) : -1; }
  const std::string& program() const { return argv_[0]; }

 private:
  std::vector<std::string> argv_;
  std::string out_;
  std::vector<std::pair<std::string, std::string>> env_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

}  // namespace la::test
