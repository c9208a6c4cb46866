// myrelayctl metrics --listen HOST:PORT: the Prometheus text on /metrics over
// HTTP (libevent's evhttp), read from the shared-memory segment at every
// scrape; the daemon is never asked anything (see ctl.h).  A daemon that is
// down, or restarted, is found again at the next scrape.
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <signal.h>

#include <cstring>
#include <ctime>

#include "ctl/ctl.h"

namespace myrelay::ctl {

namespace {

struct MetricsServer {
  const Options* options = nullptr;
  event_base* base = nullptr;
  std::unique_ptr<ShmTable> table;  // kept while its daemon lives
  uint64_t scrapes = 0;
};

void reply(evhttp_request* req, int code, const char* reason, const std::string& body, const char* type) {
  evkeyvalq* headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Content-Type", type);
  evbuffer* buf = evbuffer_new();
  if (!buf) {
    evhttp_send_error(req, 500, "Internal Server Error");
    return;
  }
  if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) evbuffer_add(buf, body.data(), body.size());
  evhttp_send_reply(req, code, reason, buf);
  evbuffer_free(buf);
}

void on_metrics(evhttp_request* req, void* arg) {
  auto* s = static_cast<MetricsServer*>(arg);
  ++s->scrapes;
  if (s->table && !daemon_alive(*s->table)) s->table.reset();  // stopped or restarted
  if (!s->table && open_table(*s->options, s->table) >= 0) s->table.reset();
  const std::string body = s->table ? metrics_text(*s->table) : down_metrics_text();
  reply(req, 200, "OK", body, "text/plain; version=0.0.4; charset=utf-8");
}

void on_other(evhttp_request* req, void*) {
  const char* uri = evhttp_request_get_uri(req);
  if (uri && strcmp(uri, "/") == 0) {
    reply(req, 200, "OK", "myrelayctl: the metrics are on /metrics\n", "text/plain; charset=utf-8");
    return;
  }
  reply(req, 404, "Not Found", "not found: the metrics are on /metrics\n", "text/plain; charset=utf-8");
}

void on_stop(evutil_socket_t, short, void* arg) { event_base_loopexit(static_cast<event_base*>(arg), nullptr); }

}  // namespace

int serve_metrics(const Options& o) {
  // HOST:PORT, [IPv6]:PORT
  const std::string& l = o.listen;
  size_t colon = l.rfind(':');
  std::string host = colon == std::string::npos ? "" : l.substr(0, colon);
  uint64_t port = 0;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty() || !parse_u64(l.substr(colon + 1), port) || port == 0 || port > 65535)
    return bad_usage("--listen: expected HOST:PORT, as in 127.0.0.1:9904, not '" + l + "'");
  signal(SIGPIPE, SIG_IGN);
  MetricsServer s;
  s.options = &o;
  s.base = event_base_new();
  evhttp* http = s.base ? evhttp_new(s.base) : nullptr;
  if (!http) {
    fprintf(stderr, "%s: cannot set up the HTTP server\n", kProg);
    return kFailure;
  }
  evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
  evhttp_set_timeout(http, 10);
  evhttp_set_max_headers_size(http, 16 * 1024);
  evhttp_set_max_body_size(http, 0);
  evhttp_set_cb(http, "/metrics", on_metrics, &s);
  evhttp_set_gencb(http, on_other, nullptr);
  if (!evhttp_bind_socket_with_handle(http, host.c_str(), uint16_t(port))) {
    fprintf(stderr, "%s: cannot listen on %s: %s\n", kProg, l.c_str(), strerror(errno));
    evhttp_free(http);
    event_base_free(s.base);
    return kFailure;
  }
  event* stops[] = {evsignal_new(s.base, SIGINT, on_stop, s.base), evsignal_new(s.base, SIGTERM, on_stop, s.base)};
  for (event* e : stops)
    if (e) event_add(e, nullptr);
  printf("%s: serving the metrics on http://%s/metrics\n", kProg, l.c_str());
  fflush(stdout);
  event_base_dispatch(s.base);
  for (event* e : stops)
    if (e) event_free(e);
  evhttp_free(http);
  s.table.reset();
  event_base_free(s.base);
  printf("%s: stopped after %llu scrapes\n", kProg, (unsigned long long)s.scrapes);
  return kOk;
}

}  // namespace myrelay::ctl
