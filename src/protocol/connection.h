// One non-blocking TCP connection: libevent evbuffers for the data and plain
// events for readiness, in place of bufferevent_socket.  bufferevent defers
// every write to the next loop turn through an EV_WRITE registration and asks
// FIONREAD before every read; here a write goes out at once and EV_WRITE is
// registered only while the kernel will not take more, and a read reads
// straight into reserved buffer space.  Per query that saves about half the
// system calls.
#pragma once

#include <event2/buffer.h>
#include <event2/event.h>
#include <sys/uio.h>
#include <sys/socket.h>

#include <cstddef>
#include <string>

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct bio_st BIO;

namespace myrelay {

class Connection {
 public:
  // Data callbacks: new input arrived / output drained to the low-water mark.
  using DataCb = void (*)(Connection* c, void* arg);
  // Everything else; err is the socket error for kError.
  using EventCb = void (*)(Connection* c, short what, int err, void* arg);
  static constexpr short kReading = 0x01;
  static constexpr short kWriting = 0x02;
  static constexpr short kEof = 0x10;
  static constexpr short kError = 0x20;
  static constexpr short kTimeout = 0x40;
  static constexpr short kConnected = 0x80;
  static constexpr short kTlsReady = 0x100;  // start_tls()'s handshake is done

  // Adopts a connected socket (fd >= 0), or makes one later in connect().
  Connection(event_base* base, int fd);
  ~Connection();  // closes the socket; safe inside its own callbacks
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Set up (a socket still to connect has no events yet).
  bool ok() const { return in_ && out_ && (fd_ < 0 || (read_ev_ && write_ev_)); }
  int fd() const { return fd_; }
  evbuffer* input() const { return in_; }
  evbuffer* output() const { return out_; }

  void set_callbacks(DataCb read_cb, DataCb write_cb, EventCb event_cb, void* arg);
  // Reading stops while this much input waits (0: never).
  void set_read_high_water(size_t n) { read_high_ = n; }
  // write_cb runs after a write leaves at most this much output.
  void set_write_low_water(size_t n) { write_low_ = n; }
  // Fails the connection (kWriting | kTimeout) when pending output makes no
  // progress for this long.
  void set_write_timeout(int seconds);

  void enable_read();
  void disable_read();

  // Starts a non-blocking connect; kConnected or kError follows through
  // event_cb, never from inside this call.  -1 (errno set): failed at once.
  int connect(const sockaddr* addr, int len);

  // TCP keepalive on the socket: a peer silent for idle_s seconds is probed
  // every max(1, min(10, idle_s / 3)) s and declared dead after 3 unanswered
  // probes; data left unacknowledged that long fails the connection too
  // (TCP_USER_TIMEOUT).  The loss then arrives as kError (ETIMEDOUT).
  bool set_keepalive(int idle_s);

  // Sends what the output holds now, as far as the kernel takes it; the rest
  // goes when the socket is writable.  Never calls back from inside.
  void flush();
  // Send the given bytes, or the first n bytes of `src` (which loses them),
  // after what the output holds.  With nothing queued they go straight to
  // the socket and only what the kernel does not take is queued: no copy
  // through the output buffer on the usual request/response path.
  void send(const iovec* iov, int n);
  void send_from(evbuffer* src, size_t n);
  // Moves `n` bytes of `src` to the output without writing yet: what follows
  // goes out with them in one write at the next flush().
  void queue_from(evbuffer* src, size_t n) { evbuffer_remove_buffer(src, out_, n); }

  // Output not yet handed to the kernel (with TLS: plaintext still to
  // encrypt and records still to send).
  size_t pending_output() const {
    return evbuffer_get_length(out_) + (ssl_ ? evbuffer_get_length(tls_out_) : 0);
  }

  // ---- TLS ----
  // Turns the connection into the server side of a TLS session with `ctx`:
  // input already read (the start of the client's hello) is handed to the
  // handshake, which runs on the connection's own events; kTlsReady follows
  // through event_cb when it is done, kReading|kError (tls_error() says why)
  // when it fails, never from inside this call.  From then on input() and
  // output() carry plaintext.  The output must be empty.  false: no SSL
  // object could be made (tls_error() says why).
  bool start_tls(SSL_CTX* ctx);
  // The client side, on a connected socket (a backend's, after the
  // SSLRequest went out): the hello goes out from the loop, then as above.
  // `verify_name` (a host name or an IP address; "" = none): the server's
  // certificate must name it (with a context that verifies certificates).
  bool start_tls_client(SSL_CTX* ctx, const std::string& verify_name);
  bool tls() const { return ssl_ != nullptr; }
  bool tls_handshaking() const { return tls_handshaking_; }
  SSL* ssl() const { return ssl_; }
  const std::string& tls_error() const { return tls_error_; }
  const char* tls_version() const;  // "" before start_tls
  const char* tls_cipher() const;

 private:
  static void on_readable(evutil_socket_t, short, void* arg);
  static void on_writable(evutil_socket_t, short, void* arg);
  static void on_write_timeout(evutil_socket_t, short, void* arg);
  static void on_notify(evutil_socket_t, short, void* arg);
  static void on_input_drained(evbuffer*, const evbuffer_cb_info* info, void* arg);

  bool setup_events();
  ssize_t read_some();
  bool write_some();  // false: hard error (in error_)
  bool can_send_directly() const;
  // One send()/sendmsg(): bytes sent, 0 when the kernel is full, -1 after a
  // hard error (then reported from the loop, as flush() does).
  ssize_t send_vec(const iovec* iov, int n);
  void wait_writable();
  void stop_waiting_writable();
  void suspend_read();
  void resume_read();
  void finish_connect();
  void fail(short what, int err);  // calls event_cb; may destroy this

  bool begin_tls(SSL_CTX* ctx, bool client, const std::string& verify_name);
  // TLS: ciphertext travels through tls_in_ and tls_out_ (two BIOs over
  // evbuffers), so the plain path keeps its own reads and writes.
  ssize_t raw_send_vec(const iovec* iov, int n);
  void tls_on_readable();
  void tls_handshake();            // may destroy this
  void tls_deliver();              // may destroy this
  ssize_t tls_send_vec(const iovec* iov, int n);
  bool tls_write_some();
  bool tls_send_records();         // tls_out_ to the socket; false: hard error
  bool tls_more_input() const;
  void tls_fail(const char* what);  // may destroy this

  event_base* base_;
  int fd_;
  evbuffer* in_ = nullptr;
  evbuffer* out_ = nullptr;
  evbuffer_cb_entry* drain_cb_ = nullptr;
  event* read_ev_ = nullptr;
  event* write_ev_ = nullptr;
  event* timeout_ev_ = nullptr;
  event* notify_ev_ = nullptr;  // deferred "drained" / write error reports
  int write_timeout_s_ = 0;
  DataCb read_cb_ = nullptr;
  DataCb write_cb_ = nullptr;
  EventCb event_cb_ = nullptr;
  void* arg_ = nullptr;
  size_t read_high_ = 0;
  size_t write_low_ = 0;
  size_t read_size_;           // adapts to what reads find
  bool want_read_ = false;     // the owner wants input
  bool read_added_ = false;    // read_ev_ is registered
  bool write_added_ = false;   // write_ev_ is registered
  bool connecting_ = false;
  int connect_err_ = 0;        // a refusal seen by connect() itself
  int error_ = 0;              // a write error, reported from on_writable
  bool* destroyed_ = nullptr;  // set by the destructor for a running callback
  SSL* ssl_ = nullptr;
  evbuffer* tls_in_ = nullptr;   // records received, not yet decrypted
  evbuffer* tls_out_ = nullptr;  // records made, not yet sent
  bool tls_handshaking_ = false;
  bool tls_peer_eof_ = false;
  std::string tls_error_;
};

}  // namespace myrelay
