// Helpers shared by hakmem's GoogleTest tests (allocator/*_test.cc).
//
// hakmem_test() (variants.bzl) links this library into every test it makes,
// for every variant and link mode.  It is therefore compiled once for all of
// them: it sees only the public API (hakmem.h, without any variant's
// defines) and gtest, and leaves the choice of allocator to the test.  Each
// test binary uses only the pieces it calls: nothing here runs unless
// called, so a test's checks stay the ones its own file asks for.

#ifndef HAKMEM_ALLOCATOR_TEST_SUPPORT_H_
#define HAKMEM_ALLOCATOR_TEST_SUPPORT_H_

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace hakmem_test {

// ------------------------------------------------- hiding from the optimiser

// Tells the compiler that *p may be read or written here, so it can neither
// drop a malloc/free pair whose result looks unused nor fold a read-back of
// memory it has just written.
inline void Escape(const void* p) { asm volatile("" : : "g"(p) : "memory"); }

// Hides where a pointer came from, so the compiler neither warns about nor
// reasons from what a test does with it on purpose: freeing it twice, or a
// stack, global or interior pointer; writing through a null pointer (one it
// cannot see is null is written with a plain store, not a trap instruction).
template <typename T>
inline T* Launder(T* p) {
  asm volatile("" : "+r"(p));
  return p;
}

// ------------------------------------------------------ end-of-run check --

// Registers a gtest Environment whose TearDown, after all tests, expects no
// integrity event in the whole run and intact free lists on the main thread:
// whatever the tests did, a correct allocator saw no fault.  Call it from a
// namespace-scope initialiser in test files that cause no fault on purpose
// (not in integrity_test, whose report-mode tests count events by design):
//
//   ::testing::Environment* const kCleanHeapEnv = hakmem_test::AddCleanHeapAtExit();
//
// gtest owns the returned environment.
::testing::Environment* AddCleanHeapAtExit();

// ------------------------------------------------- deliberate mistakes --

// While one exists, memcheck (--config=valgrind) reports nothing from this
// thread: a test that makes a heap mistake on purpose, to see hakmem's own
// report of it, is not failed by the tool for that mistake.  Keep its scope
// to the mistake itself.  Natively it does nothing.
class HiddenFromMemcheck {
 public:
  HiddenFromMemcheck();
  ~HiddenFromMemcheck();
  HiddenFromMemcheck(const HiddenFromMemcheck&) = delete;
  HiddenFromMemcheck& operator=(const HiddenFromMemcheck&) = delete;
};

// True when the test runs under Valgrind (--config=valgrind).  Only for
// scaling the volume of a stress test that would not finish in time under
// the tool, never for changing what a test checks.
bool UnderValgrind();

// ------------------------------------------------- children of a fork() --

// Call first thing in a child that fork() made and that will not exec.
// Under memcheck (--config=valgrind) it turns the exit-time leak check off
// for this process: blocks that the parent's other threads held only in
// their stacks and registers have no root in the child, where those
// threads do not exist, and would be reported as lost.  Errors other than
// leaks are still reported.  Natively it does nothing.
void SkipLeakCheckAfterFork();

// ------------------------------------------ re-executing the test binary --
//
// What hakmem does at start-up (reading settings, installing its crash
// handler) needs a process of its own per case: a test re-executes its own
// binary (/proc/self/exe) under a chosen, minimal environment, running only
// the file's probe test, and looks at what the child wrote and how it
// ended.  The child is the same binary, so it runs the same hakmem variant,
// linked the same way, as the test itself.

// How long a child may run before it counts as hung and is killed: 30 s,
// ten times that under Valgrind, whose children run 20-50x slower.
int ChildDeadlineSeconds();

// The probe test of one test file, e.g. {"CONFIG_TEST_PROBE",
// "ConfigProbe.DISABLED_Child"}.  The test is DISABLED_ so normal runs skip
// it; it reads the action from `variable` and skips itself when unset.  The
// variable should not be a HAKMEM_* name, so "no HAKMEM_* variable" in a
// child really means none.
struct Probe {
  const char* variable;  // environment variable naming the action
  const char* test;      // the probe test, as a --gtest_filter pattern
};

// How a child ended and what it wrote.
struct Child {
  bool ran = false;        // fork, exec and wait worked
  bool timed_out = false;  // killed after ChildDeadlineSeconds()
  int status = 0;          // waitpid() status
  std::string out;         // everything the child wrote to stdout
  std::string err;         // ... and to stderr

  bool ExitedWith(int code) const;
  bool KilledBy(int sig) const;
  // For failure messages: how the child ended and what it said.
  std::string Describe() const;
};

// The environment of every child: only what finding and running the binary
// needs (the loader's variables decide which allocator it gets, so they are
// kept), never a HAKMEM_* variable, nor Bazel's or gtest's test protocol
// variables (a child must not write the parent's XML report).
std::vector<std::string> BaseEnvironment();

// Runs `probe`'s test in a new process of this binary with
// probe.variable=action and `settings` ("NAME=value") added to
// BaseEnvironment().  The child starts with SIGSEGV, SIGBUS and SIGABRT at
// their default action and no signal blocked, whatever the test runner gave
// this process, then `ignored_signal`, if not 0, set to SIG_IGN (a
// disposition exec keeps); it leaves no core file.  Collects stdout and
// stderr until the child ends or ChildDeadlineSeconds() pass (then kills
// it).  Setup failures are reported through gtest (ADD_FAILURE) and leave
// `ran` false.
Child RunProbe(const Probe& probe, const std::string& action,
               const std::vector<std::string>& settings, int ignored_signal = 0);

}  // namespace hakmem_test

#endif  // HAKMEM_ALLOCATOR_TEST_SUPPORT_H_
