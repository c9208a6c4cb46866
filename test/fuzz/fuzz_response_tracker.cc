// Fuzzes ResponseTracker, the state machine that says where a backend's
// response ends, with any sequence of server packets after a command chosen
// by the input, driven as ServerSession drives it: the first kPeekBytes of
// each packet and its length, the is_plain_row() shortcut for rows (which
// must agree with on_server_packet()), LOCAL INFILE uploads, and the next
// command once a response is done.  A backend is input the proxy does not
// control: whatever it sends, the tracker must neither misbehave nor claim
// states that contradict each other.
//
// Input: the server's byte stream (framed packets), then 8 parameter bytes
// at the end (consumed first): the command, the capabilities, MariaDB's
// cache-metadata capability, COM_STMT_EXECUTE's flags byte, and which
// packets to report as spanning several 16 MiB chunks.
#include <vector>

#include "fuzz_common.h"
#include "protocol/codec.h"
#include "protocol/response_tracker.h"

using namespace myrelay;
using namespace myrelay::proto;
using Ev = ResponseTracker::Event;

namespace {

const uint8_t kCommands[] = {COM_QUERY,          COM_STMT_EXECUTE, COM_STMT_PREPARE, COM_FIELD_LIST,
                             COM_STMT_FETCH,     COM_PING,         COM_STATISTICS,   COM_INIT_DB,
                             COM_STMT_RESET,     COM_PROCESS_INFO, COM_CHANGE_USER,  COM_RESET_CONNECTION,
                             COM_STMT_BULK_EXECUTE, COM_SET_OPTION, COM_STMT_CLOSE,  COM_QUIT};

const uint32_t kClassic = CLIENT_PROTOCOL_41 | CLIENT_MULTI_RESULTS | CLIENT_PS_MULTI_RESULTS;
const uint32_t kModern = kClassic | CLIENT_DEPRECATE_EOF;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet_logs();
  FuzzedDataProvider fdp(data, size);
  const uint8_t cmd_pick = fdp.ConsumeIntegral<uint8_t>();
  const uint8_t caps_pick = fdp.ConsumeIntegral<uint8_t>();
  const uint8_t exec_flags = fdp.ConsumeIntegral<uint8_t>();
  const uint8_t misc = fdp.ConsumeIntegral<uint8_t>();
  const uint32_t huge_mask = fdp.ConsumeIntegral<uint32_t>();
  const std::string stream = fdp.ConsumeRemainingBytesAsString();

  // Mostly the commands the proxy forwards; sometimes any byte.
  uint8_t command = (cmd_pick & 0x80) ? uint8_t(cmd_pick & 0x7f) : kCommands[cmd_pick % sizeof(kCommands)];
  if (cmd_pick == 0xff) command = COM_STMT_BULK_EXECUTE;
  uint32_t caps = (caps_pick & 1) ? kModern : kClassic;
  if (caps_pick & 2) caps |= CLIENT_SESSION_TRACK;
  if (caps_pick & 4) caps &= ~uint32_t(CLIENT_MULTI_RESULTS);
  const uint32_t ext_caps = (caps_pick & 8) ? uint32_t(MARIADB_CLIENT_CACHE_METADATA) : 0u;

  // The command's payload as the tracker sees it: COM_STMT_EXECUTE's
  // cmd, stmt_id(4), flags(1), iteration count(4).
  uint8_t payload[10] = {command, 1, 0, 0, 0, exec_flags, 1, 0, 0, 0};
  const size_t payload_len = (misc & 1) ? sizeof(payload) : 1 + (misc >> 1) % sizeof(payload);

  std::vector<std::string> packets = fuzz::split_packets(stream, 1u << 30, 256);

  ResponseTracker t;
  t.start(command, payload, payload_len, caps, ext_caps);
  FUZZ_CHECK(t.command() == command);
  if (!ResponseTracker::expects_response(command)) FUZZ_CHECK(t.done());
  unsigned commands = 1;
  for (size_t i = 0; i < packets.size(); ++i) {
    const std::string& p = packets[i];
    if (t.done()) {
      // The next command on this server session (the same kind again, or
      // the next in the list): the tracker starts from its state after the
      // last response.
      uint8_t next = (misc & 0x40) ? command : kCommands[(cmd_pick + commands) % sizeof(kCommands)];
      payload[0] = next;
      t.start(next, payload, payload_len, caps, ext_caps);
      ++commands;
      if (t.done()) continue;  // no response expected: the packet is the next one's
    }
    if (t.awaiting_client_upload()) {
      // The client uploads: packets of the lengths in the stream, then the empty one.
      t.on_client_infile_packet(p.size());
      FUZZ_CHECK(p.empty() ? !t.awaiting_client_upload() : t.awaiting_client_upload());
      continue;
    }
    // A packet longer than one chunk: at least kMaxChunk bytes.
    const uint64_t length = (huge_mask >> (i % 32)) & 1 ? uint64_t(kMaxChunk) + p.size() : p.size();
    const size_t head_len = size_t(std::min<uint64_t>(std::min<uint64_t>(length, p.size()), ResponseTracker::kPeekBytes));
    const uint8_t* head = fuzz::bytes(p);
    if (head_len && t.is_plain_row(head[0], length)) {
      // The relay's shortcut must mean what the full call would say.
      ResponseTracker copy = t;
      FUZZ_CHECK(copy.on_server_packet(head, head_len, length) == Ev::Continue);
      FUZZ_CHECK(!copy.done() && !copy.awaiting_client_upload());
      continue;
    }
    Ev ev = t.on_server_packet(head, head_len, length);
    switch (ev) {
      case Ev::Done:
        FUZZ_CHECK(t.done());
        FUZZ_CHECK(!t.awaiting_client_upload());
        (void)t.last_status();
        (void)t.have_status();
        (void)t.ended_with_error();
        (void)t.result_sets();
        (void)t.last_insert_id();
        break;
      case Ev::Continue:
        FUZZ_CHECK(!t.done());
        FUZZ_CHECK(!t.awaiting_client_upload());
        break;
      case Ev::LocalInfile:
        FUZZ_CHECK(t.awaiting_client_upload());
        FUZZ_CHECK(!t.done());
        break;
      case Ev::Malformed:
        // The server session closes; a new command starts afresh.
        t.start(command, payload, payload_len, caps, ext_caps);
        ++commands;
        break;
    }
    (void)t.saw_ok();
    (void)t.ok_has_tail();
    (void)t.saw_prepare_ok();
    (void)t.saw_prepare_def();
    (void)t.eof_reported_state_change();
    (void)t.saw_flagged_eof();
  }
  return 0;
}
