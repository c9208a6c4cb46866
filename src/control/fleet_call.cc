// One request to one peer (see fleet_call.h).
#include "control/fleet_call.h"

#include <event2/buffer.h>

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

PeerCall::PeerCall(event_base* base, PeerAddress peer, std::string secret, const Request& request, int timeout_ms,
                   Done done)
    : peer_(std::move(peer)), secret_(std::move(secret)), nonce_(request.nonce), timeout_ms_(timeout_ms),
      done_(std::move(done)), started_us_(monotonic_us()) {
  timer_ = evtimer_new(base, on_timer, this);
  bev_ = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
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

void PeerCall::on_event(bufferevent*, short what, void* arg) {
  auto* self = static_cast<PeerCall*>(arg);
  if (what & BEV_EVENT_CONNECTED) {
    self->connected_ = true;
    return;
  }
  int err = EVUTIL_SOCKET_ERROR();
  if (what & BEV_EVENT_EOF) return self->fail("it closed the connection without answering");
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
