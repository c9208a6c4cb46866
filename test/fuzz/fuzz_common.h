// Shared by the libFuzzer harnesses in test/fuzz (built by "make fuzz" in a
// build configured with --enable-fuzzing; scripts/fuzz runs them).
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/codec.h"
#include "service/log.h"

// An invariant the code under test promises.  A violation is a finding: the
// harness aborts, and libFuzzer keeps the input as a crash.
#define FUZZ_CHECK(cond)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                        \
    }                                                                                 \
  } while (0)

// UndefinedBehaviorSanitizer's findings are fatal, so that libFuzzer keeps
// the input (UBSAN_OPTIONS still overrides this).
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }

namespace fuzz {

inline std::string_view view(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}
inline const uint8_t* bytes(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// Only errors reach standard error: the code under test logs what it drops.
inline void quiet_logs() {
  static const bool once = (myrelay::log_set_level(myrelay::LogLevel::Error), true);
  (void)once;
}

// The payloads of the packets framed in `in`, as the proxy reads them
// (read_packet: 16 MiB chunks joined), at most `max_packets` of them; stops
// at the first incomplete or oversized one.
inline std::vector<std::string> split_packets(std::string_view in, size_t max_len, size_t max_packets,
                                              std::vector<uint8_t>* seqs = nullptr) {
  std::vector<std::string> out;
  while (out.size() < max_packets) {
    uint8_t first = 0, last = 0;
    std::string payload;
    size_t consumed = 0;
    if (myrelay::proto::read_packet(in, max_len, first, last, payload, consumed) !=
        myrelay::proto::ReadStatus::Complete)
      break;
    FUZZ_CHECK(consumed >= myrelay::proto::kHeaderLen && consumed <= in.size());
    FUZZ_CHECK(payload.size() + myrelay::proto::kHeaderLen <= consumed);
    in.remove_prefix(consumed);
    out.push_back(std::move(payload));
    if (seqs) seqs->push_back(first);
  }
  return out;
}

}  // namespace fuzz
