// A worker's inbox (memcached's thread.c queue items): other threads post
// typed items to a queue, and one byte on a notify pipe wakes the worker's
// loop, which then takes every item queued.  The byte is written only when
// the queue was empty, so the pipe never fills, and an item is never lost:
// it is in the queue before anyone is woken.
#pragma once

#include <deque>
#include <mutex>
#include <string>

#include "control/control_pipe.h"

namespace myrelay {

struct InboxItem {
  enum class Kind {
    NewConnection,  // fd, peer; `reject`: only answer "Too many connections"
    Stop,           // close every session now and leave the loop
    Drain,          // stop taking sessions; leave once they end, or after grace_s
    Control,        // a request for one session (a kill): `request`
  };
  Kind kind = Kind::Stop;
  int fd = -1;
  std::string peer_ip;
  uint16_t peer_port = 0;
  bool reject = false;
  int grace_s = 0;
  control::Request request;
};

class WorkerInbox {
 public:
  WorkerInbox() = default;
  ~WorkerInbox();
  WorkerInbox(const WorkerInbox&) = delete;
  WorkerInbox& operator=(const WorkerInbox&) = delete;

  bool open(std::string& error);
  // The end the worker's loop watches.
  int wake_fd() const { return fds_[0]; }

  // Any thread.
  void post(InboxItem item);
  // The worker: reads the wake-up bytes, then takes every item queued.
  std::deque<InboxItem> take_all();

 private:
  int fds_[2] = {-1, -1};
  std::mutex mu_;
  std::deque<InboxItem> items_;
};

}  // namespace myrelay
