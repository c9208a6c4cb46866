// One request to one peer (see fleet_call.h).
#include "control/fleet_call.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace myrelay::fleet {

namespace {
int64_t monotonic_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}
}  // namespace

PeerCall::PeerCall(event_base* base, PeerAddress peer, std::string secret, std::shared_ptr<const TlsPair> tls,
                   const Request& request, int timeout_ms, Done done)
    : peer_(std::move(peer)), secret_(std::move(secret)), nonce_(request.nonce), timeout_ms_(timeout_ms),
      done_(std::move(done)), tls_(tls != nullptr), started_us_(monotonic_us()) {
  timer_ = evtimer_new(base, on_timer, this);
  if (tls) {
    // The SSL holds its context: the pair may be replaced by a reload meanwhile.
    SSL* ssl = tls->client_ssl(peer_.host);
    bev_ = ssl ? bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE)
               : nullptr;
    // The peer closes once it has answered; its close_notify is not waited for.
    if (bev_) bufferevent_openssl_set_allow_dirty_shutdown(bev_, 1);
  } else {
    bev_ = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  }
  if (!timer_ || !bev_) {
    pending_error_ = "out of memory";
  } else {
    bufferevent_setcb(bev_, on_read, nullptr, on_event, this);
    std::string frame = encode_request(request, secret_);
    bufferevent_write(bev_, frame.data(), frame.size());
    if (bufferevent_socket_connect(bev_, reinterpret_cast<sockaddr*>(&peer_.addr), peer_.addr_len) != 0)
      pending_error_ = std::string("cannot connect: ") + strerror(errno ? errno : ECONNREFUSED);
    else
      bufferevent_enable(bev_, EV_READ);
  }
  if (!timer_) return;  // nothing can report; ok() stays false
  // A failure at start is reported from the loop too: `done` never runs
  // inside the constructor, where its owner does not hold the call yet.
  timeval tv{0, 0};
  if (pending_error_.empty()) tv = {timeout_ms_ / 1000, (timeout_ms_ % 1000) * 1000};
  evtimer_add(timer_, &tv);
}

PeerCall::~PeerCall() { release(); }

void PeerCall::release() {
  if (bev_) bufferevent_free(bev_);
  bev_ = nullptr;
  if (timer_) event_free(timer_);
  timer_ = nullptr;
}

void PeerCall::on_timer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<PeerCall*>(arg);
  if (!self->pending_error_.empty()) return self->fail(self->pending_error_);
  self->fail(std::string(self->connected_ ? "no answer" : "no connection") + " within " +
             std::to_string(self->timeout_ms_) + " ms");
}

void PeerCall::on_event(bufferevent* bev, short what, void* arg) {
  auto* self = static_cast<PeerCall*>(arg);
  if (what & BEV_EVENT_CONNECTED) {
    self->connected_ = true;
    return;
  }
  int err = EVUTIL_SOCKET_ERROR();
  if (self->tls_) {
    // libevent also records SSL_get_error()'s codes, which are no OpenSSL
    // errors (library 0): those are the connection's own failures.
    unsigned long e = bufferevent_get_openssl_error(bev);
    if (e && ERR_GET_LIB(e) != 0) {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      std::string why = std::string("TLS: ") + buf;
      SSL* ssl = bufferevent_openssl_get_ssl(bev);
      long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
      if (v != X509_V_OK) why += std::string(" (") + X509_verify_cert_error_string(v) + ")";
      return self->fail(why);
    }
  }
  if (what & BEV_EVENT_EOF)
    return self->fail(std::string("it closed the connection without answering") +
                      (self->tls_ ? " (is fleet.tls set on both proxies, with certificates they accept?)" : ""));
  if (self->tls_ && !err)
    return self->fail("it closed the connection during the TLS handshake (did it refuse this proxy's certificate?)");
  self->fail(err ? strerror(err) : "connection error");
}

void PeerCall::on_read(bufferevent* bev, void* arg) {
  auto* self = static_cast<PeerCall*>(arg);
  evbuffer* in = bufferevent_get_input(bev);
  size_t n = evbuffer_get_length(in);
  size_t old = self->inbuf_.size();
  self->inbuf_.resize(old + n);
  evbuffer_remove(in, &self->inbuf_[old], n);
  Frame f;
  std::string why;
  switch (take_frame(self->inbuf_, self->secret_, f, why)) {
    case Take::NeedMore:
      return;
    case Take::Bad:
      return self->fail("its answer is not valid: " + why + " (is fleet.secret_file the same on both proxies?)");
    case Take::Frame:
      break;
  }
  if (f.type == FrameType::Refusal) return self->fail("it refused the request: " + decode_refusal(f.body));
  Reply reply;
  if (f.type != FrameType::Reply || !decode_reply(f.body, reply, why))
    return self->fail("its answer is not valid: " + (why.empty() ? std::string("not an answer") : why));
  if (reply.nonce != self->nonce_) return self->fail("its answer is not the answer to this request (nonce differs)");
  if (self->peer_.proxy_id >= 0 && reply.sender_proxy_id != self->peer_.proxy_id)
    return self->fail("it answers as proxy_id " + std::to_string(reply.sender_proxy_id) + ", not " +
                      std::to_string(self->peer_.proxy_id) + " as fleet.peers says");
  self->answer_ = std::move(reply.answer);
  self->ok_ = true;
  self->finish();
}

void PeerCall::fail(const std::string& why) {
  error_ = why;
  ok_ = false;
  finish();
}

void PeerCall::finish() {
  if (finished_) return;
  finished_ = true;
  elapsed_us_ = monotonic_us() - started_us_;
  release();
  Done done = std::move(done_);
  if (done) done(*this);  // may destroy this call: nothing after it
}

}  // namespace myrelay::fleet
