// Session id allocation (see ids.h).
#include "session/ids.h"

namespace myrelay {

IdAllocator::IdAllocator(int proxy_id, uint64_t start_time_s)
    : proxy_id_(proxy_id & 0x7f),
      in_use_(new std::atomic<uint64_t>[kWords]),
      sessid_epoch_(start_time_s & 0xffffffffu) {
  for (size_t i = 0; i < kWords; ++i) in_use_[i].store(0, std::memory_order_relaxed);
}

uint32_t IdAllocator::acquire_cs_id() {
  // At most one full lap: with every id taken there is nothing to give.
  for (uint32_t tries = 0; tries <= kCsIdSeqMask; ++tries) {
    uint32_t seq = (cs_seq_.fetch_add(1, std::memory_order_relaxed) + 1) & kCsIdSeqMask;
    if (seq == 0) continue;  // keep the sequence part non-zero
    uint64_t bit = uint64_t(1) << (seq % 64);
    uint64_t old = in_use_[seq / 64].fetch_or(bit, std::memory_order_acq_rel);
    if (old & bit) continue;  // still in use: skip it
    return kCsIdFlag | uint32_t(proxy_id_) << 24 | seq;
  }
  return 0;
}

void IdAllocator::release_cs_id(uint32_t cs_id) {
  uint32_t seq = cs_id & kCsIdSeqMask;
  in_use_[seq / 64].fetch_and(~(uint64_t(1) << (seq % 64)), std::memory_order_acq_rel);
}

bool IdAllocator::cs_id_in_use(uint32_t cs_id) const {
  uint32_t seq = cs_id & kCsIdSeqMask;
  return in_use_[seq / 64].load(std::memory_order_acquire) & (uint64_t(1) << (seq % 64));
}

uint64_t IdAllocator::next_proxy_sessid() {
  std::lock_guard<std::mutex> lock(sessid_mu_);
  if (++sessid_seq_ > kCsIdSeqMask) {
    sessid_seq_ = 1;
    sessid_epoch_ = (sessid_epoch_ + 1) & 0xffffffffu;
  }
  return uint64_t(proxy_id_) << 56 | sessid_epoch_ << 24 | sessid_seq_;
}

}  // namespace myrelay
