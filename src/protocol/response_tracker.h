// Knows where the backend's response to a command ends.  The proxy relays
// responses packet by packet without buffering them; this state machine looks
// at the first bytes of each logical packet and says when the response is
// complete, when the server asks for a LOCAL INFILE upload, and which status
// flags (transaction state) the response ended with.
#pragma once

#include <cstddef>
#include <cstdint>

#include "protocol/packets.h"

namespace myrelay {

class ResponseTracker {
 public:
  enum class Event {
    Continue,     // more packets of this response follow
    Done,         // this packet ends the response
    LocalInfile,  // the server wants a file: client packets follow, up to an empty one
    Malformed,    // the packet makes no sense here
  };

  // Bytes of a packet's start the tracker may need to see (or the whole
  // payload if shorter).
  static constexpr size_t kPeekBytes = 32;

  // Whether a command gets any response at all.
  static bool expects_response(uint8_t command);

  // Starts tracking the response to `command` (its payload's first bytes are
  // passed so COM_STMT_EXECUTE's cursor flag can be seen).  `caps` are the
  // capabilities the client and backend agreed on, `ext_caps` MariaDB's.
  void start(uint8_t command, const uint8_t* payload, size_t payload_len, uint32_t caps, uint32_t ext_caps = 0);

  // The next logical packet from the server: its first min(length, kPeekBytes)
  // payload bytes and its full length (the sum of its chunks' lengths, or at
  // least kMaxChunk when it spans several chunks).
  Event on_server_packet(const uint8_t* head, size_t head_len, uint64_t length);

  // Whether a packet (of `length` bytes, starting with `first`) is one more
  // row of a result set, which on_server_packet() would only pass: relaying
  // a big result checks this per row and skips the full call.
  bool is_plain_row(uint8_t first, uint64_t length) const {
    return state_ == State::Rows &&
           (length >= proto::kMaxChunk || (first != proto::kEofHeader && first != proto::kErrHeader));
  }

  // After LocalInfile: called for every packet the client uploads; the empty
  // one ends the upload and the server's answer follows.
  void on_client_infile_packet(uint64_t length);

  bool awaiting_client_upload() const { return state_ == State::InfileUpload; }
  uint8_t command() const { return command_; }
  bool done() const { return state_ == State::Idle; }
  uint16_t last_status() const { return status_; }
  bool have_status() const { return have_status_; }
  // Whether the packet just seen was an OK (or an OK ending a result set),
  // and whether that OK carried more than its fixed fields (a message or
  // session state information).
  bool saw_ok() const { return saw_ok_; }
  bool ok_has_tail() const { return ok_has_tail_; }
  // Whether the packet just seen was COM_STMT_PREPARE's OK (the statement id).
  bool saw_prepare_ok() const { return saw_prepare_ok_; }
  // ... or one of its parameter or column definitions.
  bool saw_prepare_def() const { return saw_prepare_def_; }
  // Whether an EOF (not an OK) of this response said the session's state
  // changed: an EOF cannot say how (a client without CLIENT_DEPRECATE_EOF).
  bool eof_reported_state_change() const { return eof_state_changed_; }
  // Whether the packet just seen was such an EOF.
  bool saw_flagged_eof() const { return saw_flagged_eof_; }
  // The last non-zero insert id an OK of this response reported.
  uint64_t last_insert_id() const { return last_insert_id_; }
  uint16_t last_error_code() const { return error_code_; }
  bool ended_with_error() const { return error_code_ != 0; }
  // Result sets seen in this response (a multi-statement may have several).
  unsigned result_sets() const { return result_sets_; }

 private:
  enum class State {
    Idle,
    FirstPacket,     // OK / ERR / LOCAL INFILE / column count
    SinglePacket,    // any one packet ends it (OK, ERR, EOF or a string)
    ColumnDefs,      // column definitions of a result set
    ColumnsEof,      // the EOF after them (no CLIENT_DEPRECATE_EOF)
    Rows,            // rows until EOF/OK or ERR
    PrepareFirst,    // COM_STMT_PREPARE: OK_prepare or ERR
    PrepareParams,
    PrepareParamsEof,
    PrepareColumns,
    PrepareColumnsEof,
    FieldList,       // column definitions until EOF or ERR
    FetchRows,       // COM_STMT_FETCH rows until EOF or ERR
    InfileUpload,    // the client is sending a file
  };

  Event on_result_packet(const uint8_t* head, size_t head_len, uint64_t length, bool terminator);
  Event on_prepare_packet(const uint8_t* head, size_t head_len, bool terminator);
  Event start_prepare_columns();
  Event finish_result(const uint8_t* head, size_t head_len);
  Event end_with(const uint8_t* head, size_t head_len);
  void read_terminator_status(const uint8_t* head, size_t head_len);
  void note_eof_flags(const uint8_t* head, size_t head_len);
  void read_ok_status(const uint8_t* head, size_t head_len);
  bool saw_ok_ = false;
  bool saw_prepare_ok_ = false;
  bool saw_prepare_def_ = false;
  bool eof_state_changed_ = false;
  bool saw_flagged_eof_ = false;
  bool ok_has_tail_ = false;
  uint64_t last_insert_id_ = 0;
  uint64_t packet_length_ = 0;  // of the packet being looked at

  State state_ = State::Idle;
  uint8_t command_ = 0;
  uint32_t caps_ = 0;
  bool cache_metadata_ = false;    // a column count is followed by "definitions follow"
  bool binary_ = false;            // COM_STMT_EXECUTE result (binary rows)
  bool cursor_requested_ = false;  // COM_STMT_EXECUTE with a cursor flag
  uint64_t remaining_ = 0;         // column definitions / params still to come
  uint64_t prepare_columns_ = 0;
  uint16_t status_ = 0;
  bool have_status_ = false;
  uint16_t error_code_ = 0;
  unsigned result_sets_ = 0;
};

}  // namespace myrelay
