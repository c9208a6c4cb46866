// Connections without bufferevent (see connection.h).
#include "protocol/connection.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "protocol/tls_context.h"

namespace myrelay {

// Reads start small, so a short response does not take a big chain, and grow
// while they fill what they were given, so a big result moves in large reads.
static constexpr size_t kMinRead = 16 * 1024;
static constexpr size_t kMaxRead = 256 * 1024;
// Chains handed to one sendmsg(): enough for a burst of small packets.
static constexpr int kMaxWriteVecs = 16;

// The first bytes of `b` (at most `limit`; -1: all) as up to kMaxWriteVecs
// iovecs, without copying: how many.
static int peek_iovecs(evbuffer* b, ev_ssize_t limit, iovec (&iov)[kMaxWriteVecs]) {
  evbuffer_iovec v[kMaxWriteVecs];
  int n = std::min(evbuffer_peek(b, limit, nullptr, v, kMaxWriteVecs), kMaxWriteVecs);
  size_t left = limit < 0 ? SIZE_MAX : size_t(limit);
  for (int i = 0; i < n; ++i) {
    iov[i] = {v[i].iov_base, std::min(v[i].iov_len, left)};
    left -= iov[i].iov_len;
  }
  return n;
}

// Marks the running callback's connection as gone when the owner deletes it
// from inside that callback.  The connection holds &dead only while the guard
// lives (the guard puts the old value back), which GCC cannot see.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
struct DestroyGuard {
  explicit DestroyGuard(bool*& slot) : slot_(slot), saved_(slot) { slot_ = &dead; }
  ~DestroyGuard() {
    if (!dead) slot_ = saved_;
  }
  bool*& slot_;
  bool* saved_;
  bool dead = false;
};
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif

Connection::Connection(event_base* base, int fd) : base_(base), fd_(fd), read_size_(kMinRead) {
  in_ = evbuffer_new();
  out_ = evbuffer_new();
  if (fd_ >= 0) setup_events();
}

Connection::~Connection() {
  if (destroyed_) *destroyed_ = true;
  if (ssl_) {
    // A close_notify when the kernel takes it at once; never waited for.
    if (!tls_handshaking_ && !error_ && fd_ >= 0 && evbuffer_get_length(tls_out_) == 0 &&
        SSL_shutdown(ssl_) >= 0 && evbuffer_get_length(tls_out_) > 0) {
      evbuffer_iovec v;
      if (evbuffer_peek(tls_out_, -1, nullptr, &v, 1) >= 1) {
        iovec iov{v.iov_base, v.iov_len};
        raw_send_vec(&iov, 1);
      }
    }
    ERR_clear_error();  // nothing of this connection's is left for the next
    SSL_free(ssl_);     // and its BIOs
  }
  if (tls_in_) evbuffer_free(tls_in_);
  if (tls_out_) evbuffer_free(tls_out_);
  if (read_ev_) event_free(read_ev_);
  if (write_ev_) event_free(write_ev_);
  if (notify_ev_) event_free(notify_ev_);
  if (timeout_ev_) event_free(timeout_ev_);
  if (in_) evbuffer_free(in_);
  if (out_) evbuffer_free(out_);
  if (fd_ >= 0) ::close(fd_);
}

bool Connection::setup_events() {
  read_ev_ = event_new(base_, fd_, EV_READ | EV_PERSIST, on_readable, this);
  write_ev_ = event_new(base_, fd_, EV_WRITE | EV_PERSIST, on_writable, this);
  notify_ev_ = event_new(base_, -1, 0, on_notify, this);
  return read_ev_ && write_ev_ && notify_ev_;
}

void Connection::set_callbacks(DataCb read_cb, DataCb write_cb, EventCb event_cb, void* arg) {
  read_cb_ = read_cb;
  write_cb_ = write_cb;
  event_cb_ = event_cb;
  arg_ = arg;
}

void Connection::set_write_timeout(int seconds) {
  write_timeout_s_ = seconds;
  if (!timeout_ev_) timeout_ev_ = evtimer_new(base_, on_write_timeout, this);
  if (timeout_ev_ && write_added_) {
    timeval tv{seconds, 0};
    evtimer_add(timeout_ev_, &tv);
  }
}

// ---- reading ----

void Connection::enable_read() {
  want_read_ = true;
  if (connecting_ || !read_ev_ || read_added_) return;
  if (read_high_ && evbuffer_get_length(in_) >= read_high_) {
    suspend_read();
    return;
  }
  if (event_add(read_ev_, nullptr) == 0) read_added_ = true;
  // TLS: records may wait, decrypted or not, that no readiness will announce.
  if (ssl_ && read_added_ && tls_more_input()) event_active(read_ev_, EV_READ, 1);
}

void Connection::disable_read() {
  want_read_ = false;
  if (drain_cb_) evbuffer_cb_clear_flags(in_, drain_cb_, EVBUFFER_CB_ENABLED);
  if (read_added_) {
    event_del(read_ev_);
    read_added_ = false;
  }
}

// Input reached the high-water mark: stop reading until the owner drains it.
void Connection::suspend_read() {
  if (read_added_) {
    event_del(read_ev_);
    read_added_ = false;
  }
  if (!drain_cb_)
    drain_cb_ = evbuffer_add_cb(in_, on_input_drained, this);
  else
    evbuffer_cb_set_flags(in_, drain_cb_, EVBUFFER_CB_ENABLED);
}

void Connection::resume_read() {
  if (drain_cb_) evbuffer_cb_clear_flags(in_, drain_cb_, EVBUFFER_CB_ENABLED);
  if (want_read_ && !read_added_ && event_add(read_ev_, nullptr) == 0) {
    read_added_ = true;
    if (ssl_ && tls_more_input()) event_active(read_ev_, EV_READ, 1);
  }
}

// Runs inside the owner's evbuffer calls: it only re-registers EV_READ.
void Connection::on_input_drained(evbuffer*, const evbuffer_cb_info* info, void* arg) {
  auto* c = static_cast<Connection*>(arg);
  if (info->n_deleted && evbuffer_get_length(c->in_) < c->read_high_) c->resume_read();
}

// Reads into reserved space: evbuffer_read would ask ioctl(FIONREAD) first.
// One piece (the usual case) goes through recv(), which skips the iovec
// import and the VFS layer that readv() passes through.
ssize_t Connection::read_some() {
  size_t want = read_size_;
  if (read_high_) {
    size_t have = evbuffer_get_length(in_);
    want = std::min(want, have < read_high_ ? read_high_ - have : size_t(0));
    if (want == 0) return -2;
  }
  evbuffer_iovec v[2];
  int n = evbuffer_reserve_space(in_, ev_ssize_t(want), v, 2);
  if (n <= 0) {
    errno = ENOMEM;
    return -1;
  }
  size_t room = 0;
  for (int i = 0; i < n; ++i) room += v[i].iov_len;
  ssize_t r;
  if (n == 1) {
    r = ::recv(fd_, v[0].iov_base, v[0].iov_len, 0);
  } else {
    iovec iov[2];
    for (int i = 0; i < n; ++i) iov[i] = {v[i].iov_base, v[i].iov_len};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = size_t(n);
    r = ::recvmsg(fd_, &msg, 0);
  }
  if (r <= 0) {
    int saved = errno;
    evbuffer_commit_space(in_, v, 0);
    errno = saved;
    return r;
  }
  size_t left = size_t(r);
  int used = 0;
  for (; used < n && left > 0; ++used) {
    v[used].iov_len = std::min(v[used].iov_len, left);
    left -= v[used].iov_len;
  }
  evbuffer_commit_space(in_, v, used);
  if (size_t(r) >= room && read_size_ < kMaxRead)
    read_size_ *= 2;
  else if (size_t(r) < read_size_ / 8 && read_size_ > kMinRead)
    read_size_ /= 2;
  return r;
}

void Connection::on_readable(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Connection*>(arg);
  if (c->ssl_) {
    c->tls_on_readable();
    return;
  }
  ssize_t r = c->read_some();
  if (r == -2) {
    c->suspend_read();
    return;
  }
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    int err = errno;
    c->disable_read();
    c->fail(kReading | kError, err);
    return;
  }
  if (r == 0) {
    c->disable_read();
    c->fail(kReading | kEof, 0);
    return;
  }
  if (c->read_cb_) {
    DestroyGuard g(c->destroyed_);
    c->read_cb_(c, c->arg_);
    if (g.dead) return;
  }
  if (c->read_high_ && c->read_added_ && evbuffer_get_length(c->in_) >= c->read_high_)
    c->suspend_read();
}

// ---- writing ----

ssize_t Connection::send_vec(const iovec* iov, int n) {
  if (ssl_) return tls_send_vec(iov, n);
  return raw_send_vec(iov, n);
}

ssize_t Connection::raw_send_vec(const iovec* iov, int n) {
  ssize_t r;
  if (n == 1) {
    r = ::send(fd_, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
  } else {
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = size_t(n);
    r = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
  }
  if (r >= 0) return r;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
  error_ = errno;
  return -1;
}

// Writes what the kernel takes: send() for one piece, sendmsg() for more
// (evbuffer_write always takes the writev() path).
bool Connection::write_some() {
  if (ssl_) return tls_write_some();
  iovec iov[kMaxWriteVecs];
  int n = peek_iovecs(out_, -1, iov);
  if (n <= 0) return true;
  ssize_t r = send_vec(iov, n);
  if (r < 0) return false;
  evbuffer_drain(out_, size_t(r));
  if (r > 0 && timeout_ev_ && write_timeout_s_) {
    timeval tv{write_timeout_s_, 0};  // progress: the deadline moves on
    evtimer_add(timeout_ev_, &tv);
  }
  return true;
}

bool Connection::can_send_directly() const {
  return write_ev_ && !connecting_ && !error_ && !write_added_ && evbuffer_get_length(out_) == 0;
}

void Connection::send(const iovec* iov, int n) {
  size_t sent = 0;
  bool tried = can_send_directly();
  if (tried) {
    ssize_t r = send_vec(iov, n);
    if (r < 0) {
      if (notify_ev_) event_active(notify_ev_, 0, 1);
      return;
    }
    sent = size_t(r);
  }
  for (int i = 0; i < n; ++i) {  // queue what the kernel did not take
    size_t skip = std::min(sent, iov[i].iov_len);
    sent -= skip;
    if (iov[i].iov_len > skip)
      evbuffer_add(out_, static_cast<const char*>(iov[i].iov_base) + skip, iov[i].iov_len - skip);
  }
  if (!tried)
    flush();
  else if (evbuffer_get_length(out_) > 0)
    wait_writable();
}

void Connection::send_from(evbuffer* src, size_t n) {
  if (n == 0) return;
  if (!can_send_directly()) {
    evbuffer_remove_buffer(src, out_, n);
    flush();
    return;
  }
  iovec iov[kMaxWriteVecs];
  int k = peek_iovecs(src, ev_ssize_t(n), iov);
  size_t want = 0;
  for (int i = 0; i < k; ++i) want += iov[i].iov_len;
  ssize_t r = send_vec(iov, k);
  if (r < 0) {  // the connection is failing: the bytes have nowhere to go
    evbuffer_drain(src, n);
    if (notify_ev_) event_active(notify_ev_, 0, 1);
    return;
  }
  evbuffer_drain(src, size_t(r));
  if (size_t(r) < n) {
    evbuffer_remove_buffer(src, out_, n - size_t(r));
    wait_writable();
  }
}

void Connection::wait_writable() {
  if (write_added_) return;
  if (event_add(write_ev_, nullptr) == 0) write_added_ = true;
  if (timeout_ev_ && write_timeout_s_) {
    timeval tv{write_timeout_s_, 0};
    evtimer_add(timeout_ev_, &tv);
  }
}

void Connection::stop_waiting_writable() {
  if (write_added_) {
    event_del(write_ev_);
    write_added_ = false;
  }
  if (timeout_ev_) evtimer_del(timeout_ev_);
}

void Connection::flush() {
  // Waiting for EV_WRITE means the kernel is full: that event writes.
  if (!write_ev_ || connecting_ || error_ || write_added_) return;
  size_t before = evbuffer_get_length(out_);
  if (before == 0) return;
  // Errors and "drained" are reported from the loop, not from in here, by a
  // separate event: activating write_ev_ while it is not added would leave
  // libevent dropping it from the loop once it is added afterwards.
  if (!write_some()) {
    if (notify_ev_) event_active(notify_ev_, 0, 1);
    return;
  }
  size_t after = evbuffer_get_length(out_);
  if (after > 0) {
    wait_writable();
  } else if (before > write_low_ && write_cb_ && notify_ev_) {
    // Drained past the low-water mark with no EV_WRITE to come: an owner
    // waiting for that still hears it.
    event_active(notify_ev_, 0, 1);
  }
}

void Connection::on_notify(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Connection*>(arg);
  if (c->error_) {
    c->stop_waiting_writable();
    c->fail(kWriting | kError, c->error_);
    return;
  }
  if (!c->write_added_ && evbuffer_get_length(c->out_) <= c->write_low_ && c->write_cb_)
    c->write_cb_(c, c->arg_);  // may destroy c
}

void Connection::on_writable(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Connection*>(arg);
  if (c->connecting_) {
    c->finish_connect();
    return;
  }
  if (c->error_) {
    c->stop_waiting_writable();
    c->fail(kWriting | kError, c->error_);
    return;
  }
  if (c->pending_output() > 0 && !c->write_some()) {
    c->stop_waiting_writable();
    c->fail(kWriting | kError, c->error_);
    return;
  }
  size_t left = c->pending_output();
  if (left == 0) c->stop_waiting_writable();
  if (left <= c->write_low_ && c->write_cb_) c->write_cb_(c, c->arg_);  // may destroy c
}

void Connection::on_write_timeout(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Connection*>(arg);
  c->stop_waiting_writable();
  c->fail(kWriting | kTimeout, ETIMEDOUT);
}

void Connection::fail(short what, int err) {
  errno = err;
  if (event_cb_) event_cb_(this, what, err, arg_);  // may destroy this
}

// ---- connecting ----

bool Connection::set_keepalive(int idle_s) {
  if (fd_ < 0 || idle_s <= 0) return false;
  int on = 1, idle = idle_s, interval = std::max(1, std::min(10, idle_s / 3)), count = 3;
  unsigned user_timeout_ms = unsigned(idle + interval * count) * 1000u;
  return setsockopt(fd_, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) == 0 &&
         setsockopt(fd_, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) == 0 &&
         setsockopt(fd_, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval)) == 0 &&
         setsockopt(fd_, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count)) == 0 &&
         setsockopt(fd_, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms)) == 0;
}

int Connection::connect(const sockaddr* addr, int len) {
  if (fd_ >= 0 || !in_ || !out_) {
    errno = EINVAL;
    return -1;
  }
  fd_ = ::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return -1;
  if (!setup_events()) {
    errno = ENOMEM;
    return -1;
  }
  connecting_ = true;
  if (::connect(fd_, addr, socklen_t(len)) < 0) {
    if (errno == ECONNREFUSED)
      connect_err_ = errno;  // reported from the loop, as a later refusal would be
    else if (errno != EINPROGRESS && errno != EINTR)
      return -1;
  }
  if (connect_err_)
    event_active(write_ev_, EV_WRITE, 1);
  else
    wait_writable();
  return 0;
}

void Connection::finish_connect() {
  int err = connect_err_;
  if (!err) {
    socklen_t elen = sizeof(err);
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) err = errno;
  }
  if (err == EINPROGRESS || err == EINTR) return;  // not yet
  connecting_ = false;
  stop_waiting_writable();
  if (err) {
    fail(kError, err);
    return;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (want_read_) enable_read();
  {
    DestroyGuard g(destroyed_);
    if (event_cb_) event_cb_(this, kConnected, 0, arg_);
    if (g.dead) return;
  }
  flush();
}

// ---- TLS ----
//
// Records go through two evbuffers behind BIOs of our own: the socket is
// read and written by the same code as the plain path's, OpenSSL only turns
// records into plaintext and back.  Input the owner read past its SSLRequest
// (the client's first flight) is simply handed over.

// Plaintext encrypted per step: the output buffer keeps telling the owner
// how far behind the client is (it throttles relays by it).
static constexpr size_t kTlsChunk = 64 * 1024;
// Bytes of records read per recv(): one full record and its overhead.
static constexpr size_t kTlsRead = 17 * 1024;

namespace {

// SSL_get_error() needs this thread's error queue empty before each call.
// ERR_clear_error() costs some 600 instructions whether or not anything is
// queued (a quarter of the proxy's own work per query): a look first.
inline void tls_clear_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

int bio_write(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  return evbuffer_add(static_cast<evbuffer*>(BIO_get_data(b)), data, size_t(len)) == 0 ? len : -1;
}

int bio_read(BIO* b, char* data, int len) {
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  int n = evbuffer_remove(static_cast<evbuffer*>(BIO_get_data(b)), data, size_t(len));
  if (n <= 0) {
    BIO_set_retry_read(b);  // nothing yet: SSL_ERROR_WANT_READ
    return -1;
  }
  return n;
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_PENDING: return long(evbuffer_get_length(static_cast<evbuffer*>(BIO_get_data(b))));
    default: return 0;
  }
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

int bio_destroy(BIO*) { return 1; }  // the evbuffer is the connection's

const BIO_METHOD* evbuffer_bio() {
  static BIO_METHOD* m = [] {
    BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "myrelay evbuffer");
    if (bm) {
      BIO_meth_set_write(bm, bio_write);
      BIO_meth_set_read(bm, bio_read);
      BIO_meth_set_ctrl(bm, bio_ctrl);
      BIO_meth_set_create(bm, bio_create);
      BIO_meth_set_destroy(bm, bio_destroy);
    }
    return bm;
  }();
  return m;
}

}  // namespace

bool Connection::start_tls(SSL_CTX* ctx) { return begin_tls(ctx, false, ""); }

bool Connection::start_tls_client(SSL_CTX* ctx, const std::string& verify_name) {
  return begin_tls(ctx, true, verify_name);
}

bool Connection::begin_tls(SSL_CTX* ctx, bool client, const std::string& verify_name) {
  if (ssl_ || fd_ < 0 || connecting_ || !ctx || evbuffer_get_length(out_) > 0) {
    tls_error_ = "the connection cannot start TLS now";
    return false;
  }
  const BIO_METHOD* method = evbuffer_bio();
  if (!tls_in_) tls_in_ = evbuffer_new();
  if (!tls_out_) tls_out_ = evbuffer_new();
  ERR_clear_error();
  SSL* ssl = method && tls_in_ && tls_out_ ? SSL_new(ctx) : nullptr;
  BIO* rb = ssl ? BIO_new(method) : nullptr;
  BIO* wb = rb ? BIO_new(method) : nullptr;
  if (!wb) {
    tls_error_ = "cannot set up TLS: " + tls_error_string();
    if (rb) BIO_free(rb);
    if (ssl) SSL_free(ssl);
    return false;
  }
  BIO_set_data(rb, tls_in_);
  BIO_set_data(wb, tls_out_);
  SSL_set_bio(ssl, rb, wb);  // the SSL owns both now
  if (client) {
    SSL_set_connect_state(ssl);
    if (!verify_name.empty()) tls_expect_name(ssl, verify_name);
  } else {
    SSL_set_accept_state(ssl);
  }
  ssl_ = ssl;
  tls_handshaking_ = true;
  evbuffer_add_buffer(tls_in_, in_);  // the client's hello may have come with its SSLRequest
  if (!read_added_) enable_read();
  // A client speaks first: its hello goes out from the loop, as a server's
  // answer to a hello already read does.
  if (client || tls_more_input()) event_active(read_ev_, EV_READ, 1);
  return true;
}

const char* Connection::tls_version() const { return ssl_ ? SSL_get_version(ssl_) : ""; }

const char* Connection::tls_cipher() const {
  const char* c = ssl_ ? SSL_get_cipher_name(ssl_) : nullptr;
  return c ? c : "";
}

bool Connection::tls_more_input() const {
  return evbuffer_get_length(tls_in_) > 0 || SSL_pending(ssl_) > 0 || tls_peer_eof_;
}

void Connection::tls_fail(const char* what) {
  if (tls_error_.empty()) tls_error_ = what;
  disable_read();
  stop_waiting_writable();
  fail(kReading | kError, EPROTO);
}

void Connection::tls_on_readable() {
  if (!tls_peer_eof_) {
    evbuffer_iovec v;
    if (evbuffer_reserve_space(tls_in_, ev_ssize_t(kTlsRead), &v, 1) < 1) {
      disable_read();
      fail(kReading | kError, ENOMEM);
      return;
    }
    ssize_t r = ::recv(fd_, v.iov_base, v.iov_len, 0);
    if (r < 0) {
      int err = errno;
      evbuffer_commit_space(tls_in_, &v, 0);
      if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
        disable_read();
        fail(kReading | kError, err);
        return;
      }
    } else {
      v.iov_len = size_t(r);
      evbuffer_commit_space(tls_in_, &v, r > 0 ? 1 : 0);
      if (r == 0) tls_peer_eof_ = true;
    }
  }
  if (tls_handshaking_)
    tls_handshake();
  else
    tls_deliver();
}

void Connection::tls_handshake() {
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_);
  int e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, rc);
  if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ) {
    tls_error_ = "TLS handshake failed: " + tls_error_string();
    // The alert OpenSSL made says why, when the kernel takes it.
    tls_send_records();
    tls_fail("TLS handshake failed");
    return;
  }
  if (!tls_send_records()) {
    stop_waiting_writable();
    disable_read();
    fail(kWriting | kError, error_);
    return;
  }
  if (e == SSL_ERROR_WANT_READ) {
    if (tls_peer_eof_ && evbuffer_get_length(tls_in_) == 0) {
      tls_error_ = "the client closed the connection in the TLS handshake";
      disable_read();
      stop_waiting_writable();
      fail(kReading | kEof, 0);
    }
    return;
  }
  tls_handshaking_ = false;
  {
    DestroyGuard g(destroyed_);
    if (event_cb_) event_cb_(this, kTlsReady, 0, arg_);
    if (g.dead) return;
  }
  if (evbuffer_get_length(out_) > 0) flush();
  // Records that came with the handshake's last flight.
  if (read_added_ && tls_more_input()) tls_deliver();
}

// Decrypts what has arrived into the input (up to the high-water mark),
// then tells the owner.
void Connection::tls_deliver() {
  size_t produced = 0;
  bool closed = false, broken = false;
  for (;;) {
    size_t want = kTlsRead;
    if (read_high_) {
      size_t have = evbuffer_get_length(in_);
      if (have >= read_high_) break;
      want = std::min(want, read_high_ - have);
    }
    evbuffer_iovec v;
    if (evbuffer_reserve_space(in_, ev_ssize_t(want), &v, 1) < 1) {
      tls_error_ = "out of memory";
      broken = true;
      break;
    }
    size_t got = 0;
    tls_clear_errors();
    int rc = SSL_read_ex(ssl_, v.iov_base, std::min(v.iov_len, want), &got);
    if (rc == 1) {
      v.iov_len = got;
      evbuffer_commit_space(in_, &v, 1);
      produced += got;
      // Nothing left to decrypt (OpenSSL reads one record at a time, so a
      // whole one waits in tls_in_): no call just to hear WANT_READ.
      if (evbuffer_get_length(tls_in_) == 0 && SSL_pending(ssl_) == 0) break;
      continue;
    }
    evbuffer_commit_space(in_, &v, 0);
    int e = SSL_get_error(ssl_, rc);
    if (e == SSL_ERROR_WANT_READ) break;
    if (e == SSL_ERROR_ZERO_RETURN) {
      closed = true;  // the client's close_notify
    } else {
      tls_error_ = "TLS error: " + tls_error_string();
      broken = true;
    }
    break;
  }
  // Reading can make records to send (a key update's answer, say).
  if (evbuffer_get_length(tls_out_) > 0 && !tls_send_records() && notify_ev_) event_active(notify_ev_, 0, 1);
  if (produced && read_cb_) {
    DestroyGuard g(destroyed_);
    read_cb_(this, arg_);
    if (g.dead) return;
  }
  if (broken) {
    tls_fail("TLS error");
    return;
  }
  bool at_end = closed || (tls_peer_eof_ && evbuffer_get_length(tls_in_) == 0 && SSL_pending(ssl_) == 0);
  if (at_end && read_added_) {
    disable_read();
    fail(kReading | kEof, 0);
    return;
  }
  if (read_high_ && read_added_ && evbuffer_get_length(in_) >= read_high_) suspend_read();
}

// Sends the records made so far, as far as the kernel takes them; the rest
// waits for EV_WRITE.
bool Connection::tls_send_records() {
  bool progress = false;
  while (evbuffer_get_length(tls_out_) > 0) {
    iovec iov[kMaxWriteVecs];
    int n = peek_iovecs(tls_out_, -1, iov);
    ssize_t r = raw_send_vec(iov, n);
    if (r < 0) return false;
    if (r == 0) break;
    evbuffer_drain(tls_out_, size_t(r));
    progress = true;
  }
  if (progress && timeout_ev_ && write_timeout_s_) {
    timeval tv{write_timeout_s_, 0};
    evtimer_add(timeout_ev_, &tv);
  }
  if (evbuffer_get_length(tls_out_) > 0) wait_writable();
  return true;
}

// Encrypts up to kTlsChunk bytes of the given plaintext into records and
// sends them: the plaintext bytes taken, 0 while earlier records still wait
// for the kernel, -1 after a hard error (in error_).
ssize_t Connection::tls_send_vec(const iovec* iov, int n) {
  if (tls_handshaking_) return 0;
  if (!tls_send_records()) return -1;
  if (evbuffer_get_length(tls_out_) > 0) return 0;
  size_t taken = 0;
  for (int i = 0; i < n && taken < kTlsChunk; ++i) {
    size_t len = std::min(iov[i].iov_len, kTlsChunk - taken);
    if (len == 0) continue;
    size_t written = 0;
    tls_clear_errors();
    if (SSL_write_ex(ssl_, iov[i].iov_base, len, &written) != 1) {
      tls_error_ = "TLS error: " + tls_error_string();
      error_ = EPROTO;
      return -1;
    }
    taken += written;
  }
  if (!tls_send_records()) return -1;
  return ssize_t(taken);
}

bool Connection::tls_write_some() {
  if (!tls_send_records()) return false;
  if (tls_handshaking_) {
    // Plaintext waits for the handshake, which flushes it when done.
    if (evbuffer_get_length(tls_out_) == 0) stop_waiting_writable();
    return true;
  }
  while (!tls_handshaking_ && evbuffer_get_length(tls_out_) == 0 && evbuffer_get_length(out_) > 0) {
    iovec iov[kMaxWriteVecs];
    int n = peek_iovecs(out_, -1, iov);
    ssize_t r = tls_send_vec(iov, n);
    if (r < 0) return false;
    if (r == 0) break;
    evbuffer_drain(out_, size_t(r));
  }
  return true;
}

}  // namespace myrelay
