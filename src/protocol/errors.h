// The MySQL errors the proxy sends itself, by their server names, each with
// its SQLSTATE.  Only server-range codes (1xxx): clients treat a 2xxx code
// arriving from a server as a malformed packet.
#pragma once

#include <cstdint>

namespace myrelay::er {

struct Error {
  uint16_t code;
  const char* sql_state;
};

constexpr Error ER_CON_COUNT_ERROR{1040, "08004"};               // Too many connections
constexpr Error ER_HANDSHAKE_ERROR{1043, "08S01"};               // Bad handshake
constexpr Error ER_ACCESS_DENIED_ERROR{1045, "28000"};
constexpr Error ER_UNKNOWN_COM_ERROR{1047, "08S01"};             // Unknown command
constexpr Error ER_BAD_DB_ERROR{1049, "42000"};                  // Unknown database (cluster)
constexpr Error ER_PARSE_ERROR{1064, "42000"};
constexpr Error ER_NO_SUCH_THREAD{1094, "HY000"};                // Unknown thread id
constexpr Error ER_KILL_DENIED_ERROR{1095, "HY000"};             // You are not owner of thread
constexpr Error ER_UNKNOWN_ERROR{1105, "HY000"};
constexpr Error ER_NET_PACKET_TOO_LARGE{1153, "08S01"};
constexpr Error ER_NET_PACKETS_OUT_OF_ORDER{1156, "08S01"};
constexpr Error ER_NET_READ_ERROR{1158, "08S01"};                // a backend connection lost
constexpr Error ER_NET_READ_INTERRUPTED{1159, "08S01"};          // net_read_timeout
constexpr Error ER_SPECIFIC_ACCESS_DENIED_ERROR{1227, "42000"};  // needs SUPER
constexpr Error ER_NOT_SUPPORTED_AUTH_MODE{1251, "08004"};
constexpr Error ER_QUERY_INTERRUPTED{1317, "70100"};
constexpr Error ER_CONNECT_TO_FOREIGN_DATA_SOURCE{1429, "HY000"};  // a backend unreachable
constexpr Error ER_OPTION_PREVENTS_STATEMENT{1290, "HY000"};     // no writable server (read-only)
constexpr Error ER_CONNECTION_KILLED{1927, "70100"};
constexpr Error ER_STATEMENT_TIMEOUT{1969, "70100"};  // max_statement_time exceeded
constexpr Error ER_NOT_SUPPORTED_YET{1235, "42000"};
constexpr Error ER_UNKNOWN_STMT_HANDLER{1243, "HY000"};
constexpr Error ER_NEED_REPREPARE{1615, "HY000"};
constexpr Error ER_TABLEACCESS_DENIED_ERROR{1142, "42000"};

}  // namespace myrelay::er
