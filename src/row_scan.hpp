// One pass over a (B, m) array of trials for what the checks of run_trials and of the engines'
// bindings need: the first non-finite entry, the first row whose filter direction x + s is zero,
// and the range of the rows (backends/reference.py, scan_rows, is the specification).  Blocks of
// rows are scanned in parallel and their answers combined in row order, so the answer does not
// depend on the number of threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "checks.hpp"

#ifdef SHORTCUTNET_OPENMP
#include <omp.h>
#endif

namespace shortcutnet::bind {

struct RowScan {
  std::int64_t bad_index = -1;  // flat index of the first non-finite entry
  std::int64_t zero_row = -1;   // first row with x + s = 0 (meaningful when bad_index < 0, as below)
  double largest = 0.0;         // max |x + s|
  double smallest = std::numeric_limits<double>::infinity();  // min over rows of max_t |x + s|
};

namespace detail {

constexpr int kExtentChains = 8;  // independent partial maxima, so that a row's pass vectorizes

// max_t |x_t + s_t| over one row (s == nullptr: max |x_t|), by branch-free partial maxima.
inline double row_extent(const double* x, const double* s, std::int64_t m) {
  double largest[kExtentChains] = {};
  std::int64_t t = 0;
  for (; t + kExtentChains <= m; t += kExtentChains)
    for (int l = 0; l < kExtentChains; ++l) {
      const double u = std::fabs(s == nullptr ? x[t + l] : x[t + l] + s[t + l]);
      largest[l] = largest[l] > u ? largest[l] : u;
    }
  double top = 0.0;
  for (; t < m; ++t) {
    const double u = std::fabs(s == nullptr ? x[t] : x[t] + s[t]);
    top = top > u ? top : u;
  }
  for (int l = 0; l < kExtentChains; ++l) top = top > largest[l] ? top : largest[l];
  return top;
}

// Rows [first, last) in order, up to the first row with a non-finite entry.
inline RowScan scan_block(const double* x, const double* s, std::int64_t m, std::int64_t first, std::int64_t last) {
  RowScan out;
  for (std::int64_t b = first; b < last; ++b) {
    const double* row = x + b * m;
    if (!all_finite(row, m)) {
      for (std::int64_t t = 0; t < m; ++t)
        if (!std::isfinite(row[t])) {
          out.bad_index = b * m + t;
          return out;
        }
    }
    const double extent = row_extent(row, s, m);  // in cache after all_finite
    if (extent == 0.0 && out.zero_row < 0) out.zero_row = b;
    out.largest = std::max(out.largest, extent);
    out.smallest = std::min(out.smallest, extent);
  }
  return out;
}

}  // namespace detail

// The scan of x (B, m) with shift s (m doubles, or nullptr for none) on up to `threads` threads.
// With a non-finite entry only bad_index is meaningful (the others are those of the reference:
// -1 and NaN).  Releases nothing: the caller decides about the GIL.
inline RowScan scan_rows(const double* x, const double* s, std::int64_t B, std::int64_t m, int threads) {
  constexpr std::int64_t kBlockEntries = std::int64_t{1} << 16;  // fixed blocks: the same answer on any threads
  const std::int64_t rows_per_block = std::max<std::int64_t>(1, kBlockEntries / std::max<std::int64_t>(m, 1));
  const std::int64_t blocks = (B + rows_per_block - 1) / rows_per_block;
  std::vector<RowScan> parts(static_cast<std::size_t>(blocks));
  // Blocks after one with a non-finite entry cannot change the answer and are skipped.
  std::atomic<std::int64_t> first_bad_block{blocks};
  auto scan = [&](std::int64_t i) {
    if (i > first_bad_block.load(std::memory_order_relaxed)) return;
    const std::int64_t first = i * rows_per_block;
    parts[static_cast<std::size_t>(i)] = detail::scan_block(x, s, m, first, std::min(B, first + rows_per_block));
    if (parts[static_cast<std::size_t>(i)].bad_index >= 0) {
      std::int64_t seen = first_bad_block.load();
      while (i < seen && !first_bad_block.compare_exchange_weak(seen, i)) {
      }
    }
  };
#ifdef SHORTCUTNET_OPENMP
  const int workers = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, blocks)));
  if (workers > 1) {
#pragma omp parallel for schedule(dynamic) num_threads(workers)
    for (std::int64_t i = 0; i < blocks; ++i) scan(i);
  } else {
    for (std::int64_t i = 0; i < blocks; ++i) scan(i);
  }
#else
  (void)threads;
  for (std::int64_t i = 0; i < blocks; ++i) scan(i);
#endif
  RowScan out;
  for (const RowScan& part : parts) {
    if (part.bad_index >= 0) {
      RowScan bad;
      bad.bad_index = part.bad_index;
      bad.largest = bad.smallest = std::numeric_limits<double>::quiet_NaN();
      return bad;
    }
    if (out.zero_row < 0) out.zero_row = part.zero_row;
    out.largest = std::max(out.largest, part.largest);
    out.smallest = std::min(out.smallest, part.smallest);
  }
  if (B == 0) out.smallest = 0.0;
  return out;
}

// The engines' bindings' check of trial rows: finite entries (require_finite's message), and
// x + s != 0 in every row where s is given.  A zero row is any row whose entries are all zero,
// not a sum of squares, which underflows for |x + s| ~ 1e-170.
inline void require_trial_rows(const carray<double>& x, const double* s, const char* name, int threads) {
  const std::int64_t B = x.ndim() >= 1 ? x.shape(0) : 1;
  const std::int64_t m = B > 0 ? x.size() / B : 0;
  RowScan scan;
  {
    py::gil_scoped_release release;
    scan = scan_rows(x.data(), s, B, m, threads);
  }
  if (scan.bad_index >= 0) {
    std::ostringstream out;
    out << name << ": expected finite values, got " << x.data()[scan.bad_index] << " at flat index "
        << scan.bad_index;
    fail(out.str());
  }
  if (s != nullptr && scan.zero_row >= 0)
    fail(std::string(name) + ": expected " + name + " + s != 0 (the filter direction is undefined), got " + name +
         " + s = 0 in trial " + std::to_string(scan.zero_row));
}

}  // namespace shortcutnet::bind
