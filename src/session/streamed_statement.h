// The statement text of a command too long to be read whole (a COM_QUERY or
// COM_STMT_PREPARE over 64 KiB), looked at as it streams through to the
// backend: the bytes the relay moves are fed to a StatementGuard, without the
// packet headers that cut the text every 16 MiB.  The backend runs a command
// only once its last byte has arrived, so the verdict on the whole text, taken
// before that byte goes on, comes in time.
#pragma once

#include <event2/buffer.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "control/statement_guard.h"

namespace myrelay {

class StreamedStatement {
 public:
  explicit StreamedStatement(const std::string& db) : guard_(db) {}

  // The first n bytes of `in` (the relay's step) are part of the command.
  void feed(evbuffer* in, size_t n);
  // The command is complete: the findings on all of it.
  const sql::GuardFindings& finish() { return guard_.finish(); }

 private:
  sql::StatementGuard guard_;
  size_t header_left_ = 4;     // bytes of the current chunk's header still to skip
  bool command_byte_ = true;   // the first payload byte is the command, not text
  uint8_t header_[4] = {};
  uint64_t payload_left_ = 0;  // text bytes left in the current chunk
};

}  // namespace myrelay
