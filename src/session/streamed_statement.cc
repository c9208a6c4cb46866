// A long statement looked at as it streams (see streamed_statement.h).
#include "session/streamed_statement.h"

#include <algorithm>

#include "protocol/codec.h"

namespace myrelay {

void StreamedStatement::feed(evbuffer* in, size_t n) {
  evbuffer_iovec vec[16];
  evbuffer_ptr at;
  evbuffer_ptr_set(in, &at, 0, EVBUFFER_PTR_SET);
  size_t done = 0;
  while (done < n) {
    int got = evbuffer_peek(in, ssize_t(n - done), &at, vec, 16);
    if (got <= 0) return;
    for (int v = 0; v < std::min(got, 16) && done < n; ++v) {
      const uint8_t* p = static_cast<const uint8_t*>(vec[v].iov_base);
      size_t len = std::min(vec[v].iov_len, n - done);
      size_t i = 0;
      while (i < len) {
        if (header_left_ > 0) {
          header_[4 - header_left_] = p[i++];
          if (--header_left_ == 0) payload_left_ = proto::parse_header(header_).length;
          continue;
        }
        if (payload_left_ == 0) {  // a full chunk ended: another header follows
          header_left_ = 4;
          continue;
        }
        if (command_byte_) {
          command_byte_ = false;
          ++i;
          --payload_left_;
          continue;
        }
        size_t take = size_t(std::min<uint64_t>(payload_left_, len - i));
        guard_.feed(std::string_view(reinterpret_cast<const char*>(p + i), take));
        i += take;
        payload_left_ -= take;
      }
      done += len;
    }
    evbuffer_ptr_set(in, &at, done, EVBUFFER_PTR_SET);
  }
}

}  // namespace myrelay
