// Session ids (DESIGN section 3).
//   cs_id:        bit 31 set, bits 24-30 proxy_id, bits 0-23 a sequence that
//                 skips ids still in use; it is the handshake's thread id.
//   proxy_sessid: 63-bit id unique across proxies and restarts:
//                 proxy_id << 56 | epoch << 24 | sequence (24 bits); the epoch
//                 starts as the start time in seconds and moves forward when
//                 the sequence wraps, so no two sessions share one.
//   ss_id:        a per-proxy counter for server sessions.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

namespace myrelay {

constexpr uint32_t kCsIdFlag = 0x80000000u;
constexpr uint32_t kCsIdSeqMask = 0x00ffffffu;

inline bool is_cs_id(uint64_t id) { return id <= 0xffffffffu && (id & kCsIdFlag) != 0; }
inline int cs_id_proxy(uint32_t cs_id) { return int((cs_id >> 24) & 0x7f); }

class IdAllocator {
 public:
  IdAllocator(int proxy_id, uint64_t start_time_s);

  // A cs_id not in use; 0 when all 2^24-1 are taken.
  uint32_t acquire_cs_id();
  void release_cs_id(uint32_t cs_id);
  bool cs_id_in_use(uint32_t cs_id) const;

  uint64_t next_proxy_sessid();
  uint64_t next_ss_id() { return ss_seq_.fetch_add(1, std::memory_order_relaxed) + 1; }

  int proxy_id() const { return proxy_id_; }

 private:
  static constexpr size_t kWords = (kCsIdSeqMask + 1) / 64;
  int proxy_id_;
  std::atomic<uint32_t> cs_seq_{0};
  std::unique_ptr<std::atomic<uint64_t>[]> in_use_;  // one bit per sequence value

  std::mutex sessid_mu_;
  uint64_t sessid_epoch_;
  uint32_t sessid_seq_ = 0;

  std::atomic<uint64_t> ss_seq_{0};
};

}  // namespace myrelay
