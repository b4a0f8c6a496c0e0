// Seeds derived from a seed by the counter-based generator (docs/training.md section 1): the seed of
// trial b of a batch, the seed of the fresh batch of step t of online SGD, and the order of a
// training set in epoch e of mini-batch training.  Each is one Philox4x32-10 call (philox.hpp) under
// the key of the given seed, with a tag in the counter's last word that keeps the uses apart.
// python/shortcutnet/seeds.py is the same in NumPy.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "philox.hpp"

namespace shortcutnet {
namespace SHORTCUTNET_ISA_NAMESPACE {

constexpr std::uint32_t kTagTrial = 0x7472, kTagStep = 0x7374, kTagEpoch = 0x6570;

// word64 of philox(seed, c0, c1, c2, c3): its first two output words, low word first.
inline std::uint64_t philox_word64(std::uint64_t seed, std::uint32_t c0, std::uint32_t c1, std::uint32_t c2,
                                   std::uint32_t c3) {
  const std::uint32_t counter[4] = {c0, c1, c2, c3};
  std::uint32_t out[4];
  philox4x32_10(counter, philox_key(seed), out);
  return static_cast<std::uint64_t>(out[0]) | (static_cast<std::uint64_t>(out[1]) << 32);
}

inline std::uint32_t low32(std::uint64_t x) { return static_cast<std::uint32_t>(x); }
inline std::uint32_t high32(std::uint64_t x) { return static_cast<std::uint32_t>(x >> 32); }

// The seed of trial b of run_trials(seed=seed).
inline std::uint64_t trial_seed(std::uint64_t seed, std::uint64_t b) {
  return philox_word64(seed, low32(b), high32(b), 0, kTagTrial << 16);
}

// The seed of the batch of step t of online SGD in a trial with seed `seed`.
inline std::uint64_t step_seed(std::uint64_t seed, std::uint64_t t) {
  return philox_word64(seed, low32(t), high32(t), 0, kTagStep << 16);
}

// The sort key of sample i in epoch e.
inline std::uint64_t epoch_key(std::uint64_t seed, std::uint64_t e, std::uint64_t i) {
  return philox_word64(seed, low32(i), high32(i), low32(e), (kTagEpoch << 16) + (high32(e) & 0xffffu));
}

// order[0..n) = the samples of epoch e sorted by (key, index).  keyed: scratch of n pairs.
inline void epoch_order(std::uint64_t seed, std::uint64_t e, std::int64_t n, std::int64_t* order,
                        std::vector<std::pair<std::uint64_t, std::int64_t>>& keyed) {
  keyed.resize(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) keyed[static_cast<std::size_t>(i)] = {epoch_key(seed, e, static_cast<std::uint64_t>(i)), i};
  std::sort(keyed.begin(), keyed.end());
  for (std::int64_t i = 0; i < n; ++i) order[i] = keyed[static_cast<std::size_t>(i)].second;
}

}  // namespace SHORTCUTNET_ISA_NAMESPACE
}  // namespace shortcutnet
