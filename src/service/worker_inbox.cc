// A worker's inbox (see worker_inbox.h).
#include "service/worker_inbox.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace myrelay {

WorkerInbox::~WorkerInbox() {
  for (auto& item : items_)
    if (item.kind == InboxItem::Kind::NewConnection && item.fd >= 0) ::close(item.fd);
  for (int fd : fds_)
    if (fd >= 0) ::close(fd);
}

bool WorkerInbox::open(std::string& error) {
  if (pipe2(fds_, O_NONBLOCK | O_CLOEXEC) != 0) {
    error = std::string("pipe: ") + strerror(errno);
    return false;
  }
  return true;
}

void WorkerInbox::post(InboxItem item) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    was_empty = items_.empty();
    items_.push_back(std::move(item));
  }
  if (!was_empty) return;  // a wake-up is already on its way
  char b = 1;
  ssize_t n = ::write(fds_[1], &b, 1);  // EAGAIN: the worker has wake-ups pending anyway
  (void)n;
}

std::deque<InboxItem> WorkerInbox::take_all() {
  // Bytes first, items second: an item posted in between finds the queue
  // non-empty and writes no byte, and is taken here all the same.
  char buf[64];
  while (::read(fds_[0], buf, sizeof(buf)) > 0) {
  }
  std::deque<InboxItem> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.swap(items_);
  return out;
}

}  // namespace myrelay
