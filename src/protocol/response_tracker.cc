// Where a backend's response ends (see response_tracker.h).
#include "protocol/response_tracker.h"

#include "protocol/packets.h"

namespace myrelay {

using namespace proto;

bool ResponseTracker::expects_response(uint8_t command) {
  switch (command) {
    case COM_QUIT:
    case COM_STMT_SEND_LONG_DATA:
    case COM_STMT_CLOSE:
      return false;
    default:
      return true;
  }
}

void ResponseTracker::start(uint8_t command, const uint8_t* payload, size_t payload_len, uint32_t caps,
                            uint32_t ext_caps) {
  command_ = command;
  caps_ = caps;
  cache_metadata_ = ext_caps & MARIADB_CLIENT_CACHE_METADATA;
  binary_ = command == COM_STMT_EXECUTE;
  // COM_STMT_EXECUTE: cmd, stmt_id(4), flags(1): any cursor type asks for one.
  cursor_requested_ = binary_ && payload_len >= 6 && (payload[5] & 0x07) != 0;
  remaining_ = 0;
  prepare_columns_ = 0;
  have_status_ = false;
  eof_state_changed_ = false;
  error_code_ = 0;
  result_sets_ = 0;
  last_insert_id_ = 0;
  switch (command) {
    case COM_QUERY:
    case COM_STMT_EXECUTE:
    case COM_STMT_BULK_EXECUTE:
    case COM_PROCESS_INFO:
      state_ = State::FirstPacket;
      break;
    case COM_STMT_PREPARE:
      state_ = State::PrepareFirst;
      break;
    case COM_FIELD_LIST:
      state_ = State::FieldList;
      break;
    case COM_STMT_FETCH:
      state_ = State::FetchRows;
      break;
    default:
      state_ = expects_response(command) ? State::SinglePacket : State::Idle;
      break;
  }
}

void ResponseTracker::read_ok_status(const uint8_t* head, size_t head_len) {
  Reader r(head, head_len);
  r.u8();
  r.lenenc_int();
  uint64_t insert_id = r.lenenc_int();
  uint16_t status = r.u16();
  r.u16();
  if (!r.ok()) return;
  status_ = status;
  have_status_ = true;
  saw_ok_ = true;
  ok_has_tail_ = packet_length_ > size_t(r.pos() - head);
  if (insert_id) last_insert_id_ = insert_id;
}

void ResponseTracker::read_terminator_status(const uint8_t* head, size_t head_len) {
  if (caps_ & CLIENT_DEPRECATE_EOF) {
    read_ok_status(head, head_len);
  } else if (head_len >= 5) {  // 0xfe, warnings(2), status(2)
    status_ = uint16_t(head[3] | head[4] << 8);
    have_status_ = true;
    note_eof_flags(head, head_len);
  }
}

void ResponseTracker::note_eof_flags(const uint8_t* head, size_t head_len) {
  if (head_len >= 5 && (head[4] & (SERVER_SESSION_STATE_CHANGED >> 8))) saw_flagged_eof_ = eof_state_changed_ = true;
}

// An OK or EOF that ends one result: the whole response ends unless the
// server says more results follow.
ResponseTracker::Event ResponseTracker::finish_result(const uint8_t* head, size_t head_len) {
  (void)head;
  (void)head_len;
  if (have_status_ && (status_ & SERVER_MORE_RESULTS_EXISTS)) {
    state_ = State::FirstPacket;
    return Event::Continue;
  }
  state_ = State::Idle;
  return Event::Done;
}

ResponseTracker::Event ResponseTracker::end_with(const uint8_t* head, size_t head_len) {
  if (head_len >= 3 && head[0] == kErrHeader) error_code_ = uint16_t(head[1] | head[2] << 8);
  state_ = State::Idle;
  return Event::Done;
}

// A packet of a result: OK, ERR, LOCAL INFILE or a result set (column
// count, definitions, rows).  Inlined: every response goes through here.
__attribute__((always_inline)) inline ResponseTracker::Event ResponseTracker::on_result_packet(const uint8_t* head, size_t head_len, uint64_t length,
                                                         bool terminator) {
  uint8_t first = head_len ? head[0] : 0;
  switch (state_) {
    case State::FirstPacket: {
      if (first == kErrHeader) return end_with(head, head_len);
      if (first == kOkHeader) {
        read_ok_status(head, head_len);
        return finish_result(head, head_len);
      }
      if (first == kLocalInfileHeader) {
        // LOAD DATA LOCAL INFILE, run as a query or as a prepared statement.
        if (command_ != COM_QUERY && command_ != COM_STMT_EXECUTE) return Event::Malformed;
        state_ = State::InfileUpload;
        return Event::LocalInfile;
      }
      Reader r(head, head_len);
      uint64_t columns = r.lenenc_int();
      if (!r.ok() || columns == 0) return Event::Malformed;
      remaining_ = columns;
      ++result_sets_;
      state_ = State::ColumnDefs;
      // MARIADB_CLIENT_CACHE_METADATA: an execute whose columns did not
      // change skips their definitions.
      if (cache_metadata_) {
        uint8_t follows = r.u8();
        if (!r.ok()) return Event::Malformed;
        if (!follows) state_ = (caps_ & CLIENT_DEPRECATE_EOF) ? State::Rows : State::ColumnsEof;
      }
      return Event::Continue;
    }
    case State::ColumnDefs:
      if (first == kErrHeader) return end_with(head, head_len);
      if (--remaining_ == 0) state_ = (caps_ & CLIENT_DEPRECATE_EOF) ? State::Rows : State::ColumnsEof;
      return Event::Continue;
    case State::ColumnsEof:
      if (first == kErrHeader) return end_with(head, head_len);
      if (!terminator) return Event::Malformed;
      read_terminator_status(head, head_len);
      // An opened cursor ends the response here; rows come by COM_STMT_FETCH.
      if (cursor_requested_ && (status_ & SERVER_STATUS_CURSOR_EXISTS)) {
        state_ = State::Idle;
        return Event::Done;
      }
      state_ = State::Rows;
      return Event::Continue;
    default:  // Rows
      if (first == kErrHeader && length < kMaxChunk) return end_with(head, head_len);
      if (!terminator) return Event::Continue;
      read_terminator_status(head, head_len);
      if (cursor_requested_ && (status_ & SERVER_STATUS_CURSOR_EXISTS)) {
        state_ = State::Idle;
        return Event::Done;
      }
      return finish_result(head, head_len);
  }
}

ResponseTracker::Event ResponseTracker::on_server_packet(const uint8_t* head, size_t head_len,
                                                         uint64_t length) {
  saw_ok_ = false;
  saw_prepare_ok_ = false;
  saw_prepare_def_ = false;
  saw_flagged_eof_ = false;
  packet_length_ = length;
  // MariaDB's progress reports (0xff, then error code 0xffff) come in the
  // middle of a response and do not end it.
  if (head_len >= 3 && head[0] == kErrHeader && head[1] == 0xff && head[2] == 0xff && state_ != State::Idle)
    return Event::Continue;
  if (head_len == 0 && state_ != State::Rows && state_ != State::FetchRows) {
    // Only a row may be empty (zero columns never happens, but be lenient there).
    return Event::Malformed;
  }
  uint8_t first = head_len ? head[0] : 0;
  bool terminator = is_eof_or_terminator(head, length < kMaxChunk ? size_t(length) : kMaxChunk);
  switch (state_) {
    case State::Idle:
    case State::InfileUpload:
      return Event::Malformed;
    case State::SinglePacket:
      if (first == kErrHeader) return end_with(head, head_len);
      if (first == kOkHeader) read_ok_status(head, head_len);
      state_ = State::Idle;
      return Event::Done;
    case State::FirstPacket:
    case State::ColumnDefs:
    case State::ColumnsEof:
    case State::Rows:
      return on_result_packet(head, head_len, length, terminator);
    case State::PrepareFirst:
    case State::PrepareParams:
    case State::PrepareParamsEof:
    case State::PrepareColumns:
    case State::PrepareColumnsEof:
      return on_prepare_packet(head, head_len, terminator);
    case State::FieldList:
    case State::FetchRows:
      if (first == kErrHeader && (state_ == State::FieldList || length < kMaxChunk)) return end_with(head, head_len);
      if (!terminator) return Event::Continue;
      read_terminator_status(head, head_len);
      state_ = State::Idle;
      return Event::Done;
  }
  return Event::Malformed;
}

// COM_STMT_PREPARE's answer: OK_prepare, then the parameters' and the
// columns' definitions, each list with an EOF unless DEPRECATE_EOF.
ResponseTracker::Event ResponseTracker::on_prepare_packet(const uint8_t* head, size_t head_len, bool terminator) {
  uint8_t first = head_len ? head[0] : 0;
  const bool eofs = !(caps_ & CLIENT_DEPRECATE_EOF);
  switch (state_) {
    case State::PrepareFirst:
      if (first == kErrHeader) return end_with(head, head_len);
      if (first != kOkHeader || head_len < 9) return Event::Malformed;
      // 0x00, stmt_id(4), num_columns(2), num_params(2), ...
      saw_prepare_ok_ = true;
      prepare_columns_ = uint16_t(head[5] | head[6] << 8);
      remaining_ = uint16_t(head[7] | head[8] << 8);
      if (remaining_ > 0) {
        state_ = State::PrepareParams;
        return Event::Continue;
      }
      return start_prepare_columns();
    case State::PrepareParams:
      saw_prepare_def_ = true;
      if (--remaining_ > 0) return Event::Continue;
      if (eofs) {
        state_ = State::PrepareParamsEof;
        return Event::Continue;
      }
      return start_prepare_columns();
    case State::PrepareParamsEof:
      if (!terminator) return Event::Malformed;
      note_eof_flags(head, head_len);
      return start_prepare_columns();
    case State::PrepareColumns:
      saw_prepare_def_ = true;
      if (--remaining_ > 0) return Event::Continue;
      if (eofs) {
        state_ = State::PrepareColumnsEof;
        return Event::Continue;
      }
      state_ = State::Idle;
      return Event::Done;
    default:  // PrepareColumnsEof
      if (!terminator) return Event::Malformed;
      note_eof_flags(head, head_len);
      state_ = State::Idle;
      return Event::Done;
  }
}

ResponseTracker::Event ResponseTracker::start_prepare_columns() {
  if (prepare_columns_ == 0) {
    state_ = State::Idle;
    return Event::Done;
  }
  remaining_ = prepare_columns_;
  state_ = State::PrepareColumns;
  return Event::Continue;
}

void ResponseTracker::on_client_infile_packet(uint64_t length) {
  // After the empty packet the server answers with OK or ERR (an OK that may
  // announce further results of a multi-statement).
  if (state_ == State::InfileUpload && length == 0) state_ = State::FirstPacket;
}

}  // namespace myrelay
