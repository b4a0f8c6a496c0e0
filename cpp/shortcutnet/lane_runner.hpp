// The paper's model (normalized, non-overlapping patches) under the exact population gradient,
// advanced for L trials in lockstep with any optimizer of optimizers.hpp.  Compiled once per
// instruction set (src/engine_isa.inc) and chosen at run time.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "shortcutnet/optimizers.hpp"
#include "shortcutnet/population.hpp"
#include "shortcutnet/trials.hpp"

#if defined(__SSE2__)
#include <immintrin.h>
#endif
#ifdef SHORTCUTNET_OPENMP
#include <omp.h>
#endif

// The loops over the lanes of LaneRunner are the ones to vectorize (each lane is independent):
// without the annotation the compiler unrolls them and vectorizes the enclosing loop over the
// filter instead, with strided access and many shuffles.  Requires -fopenmp or -fopenmp-simd to
// take effect; the results are the same either way.
#define SHORTCUTNET_LANE_LOOP _Pragma("omp simd")

namespace shortcutnet {

namespace lanes {

// The lanes' arithmetic in native vectors (GCC / Clang vector extensions): one register of
// doubles per operand, so the per-lane sums stay in registers through the loops over entries.
#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif
typedef double Vec __attribute__((vector_size(kVectorBytes)));
typedef std::int64_t Mask __attribute__((vector_size(kVectorBytes)));  // lanes all 0 or all 1 bits
constexpr int kWidth = kVectorBytes / static_cast<int>(sizeof(double));

// Correctly rounded, as std::sqrt.
SHORTCUTNET_LANE_INLINE Vec lane_sqrt(Vec x) {
#if defined(__AVX512F__)
  return reinterpret_cast<Vec>(_mm512_sqrt_pd(reinterpret_cast<__m512d>(x)));
#elif defined(__AVX__)
  return reinterpret_cast<Vec>(_mm256_sqrt_pd(reinterpret_cast<__m256d>(x)));
#elif defined(__SSE2__)
  return reinterpret_cast<Vec>(_mm_sqrt_pd(reinterpret_cast<__m128d>(x)));
#else
  for (int e = 0; e < kWidth; ++e) x[e] = std::sqrt(x[e]);
  return x;
#endif
}

// |x| (the sign bit cleared, as std::fabs).
SHORTCUTNET_LANE_INLINE Vec lane_abs(Vec x) {
  return reinterpret_cast<Vec>(reinterpret_cast<Mask>(x) & (Mask{} + 0x7fffffffffffffffLL));
}

// two_prod (population.hpp) per lane: the same exact hi + lo.
SHORTCUTNET_LANE_INLINE void lane_two_prod(Vec a, Vec b, Vec& hi, Vec& lo) {
  hi = a * b;
#if defined(__FMA__) && defined(__AVX512F__)
  lo = reinterpret_cast<Vec>(_mm512_fmsub_pd(reinterpret_cast<__m512d>(a), reinterpret_cast<__m512d>(b),
                                             reinterpret_cast<__m512d>(hi)));
#elif defined(__FMA__) && defined(__AVX__)
  lo = reinterpret_cast<Vec>(_mm256_fmsub_pd(reinterpret_cast<__m256d>(a), reinterpret_cast<__m256d>(b),
                                             reinterpret_cast<__m256d>(hi)));
#elif defined(__FMA__) || defined(__aarch64__)
  for (int e = 0; e < kWidth; ++e) lo[e] = std::fma(a[e], b[e], -hi[e]);
#else
  const double kSplitter = 134217729.0;  // 2^27 + 1
  const Vec ca = kSplitter * a, a_hi = ca - (ca - a), a_lo = a - a_hi;
  const Vec cb = kSplitter * b, b_hi = cb - (cb - b), b_lo = b - b_hi;
  lo = ((a_hi * b_hi - hi) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo;
#endif
}

}  // namespace lanes

// One call of run_lane_groups: trials [0, batch) through last_step.
struct LaneArgs {
  const double* s;
  std::int64_t k, p, stride;
  const double* rates;  // rows of the steps rates_first .. rates_first + n_rates - 1, the last repeating
  std::int64_t rates_first, n_rates, n_steps;
  double tol, divergence;
  OptimizerSpec opt;
  int threads;
  std::int64_t batch, last_step;
  void* states;  // batch TrialState objects
  double* w;
  double* a;
  const double* w_star;
  const double* a_star;
  double* opt_state;
};

// The normalized, non-overlapping model (the paper's) advanced for L trials in lockstep.
// One trial's step is a long chain of dependent dot products, square roots and atan2, so a
// single trial leaves the core mostly idle; L independent trials in structure-of-arrays layout
// ([i][lane]) fill it (and let the compiler use SIMD).  Every lane performs exactly the
// operations of population_loss_grad and of the step loop (engine.hpp, advance) in the same order,
// with the optimizer's element rules of optimizers.hpp (Opt: its kind), so results are
// bit-identical to the one-trial path.  A lane whose trial stops is refilled with the next one.
template <int R, int Opt>
class LaneRunner {
  typedef lanes::Vec V;
  typedef lanes::Mask M;
  static constexpr int W = lanes::kWidth;
  static constexpr int L = R * W;  // lanes: R native vectors
  static bool any_set(M m) {
    bool any = false;
    for (int e = 0; e < W; ++e) any = any || m[e] != 0;
    return any;
  }
  static V* lv(double* x) { return reinterpret_cast<V*>(x); }
  static const V* lv(const double* x) { return reinterpret_cast<const V*>(x); }
  static SHORTCUTNET_LANE_INLINE V lane_sqrt(V x) { return lanes::lane_sqrt(x); }
  static SHORTCUTNET_LANE_INLINE V lane_abs(V x) { return lanes::lane_abs(x); }
  static SHORTCUTNET_LANE_INLINE void lane_two_prod(V a, V b, V& hi, V& lo) { lanes::lane_two_prod(a, b, hi, lo); }

 public:
  LaneRunner(const Architecture& arch, const double* rates, std::int64_t rates_first, std::int64_t n_rates,
             std::int64_t n_steps, double tol, double divergence, const OptimizerSpec& opt)
      : arch_(arch), rates_(rates), rates_first_(rates_first), n_rates_(n_rates), n_steps_(n_steps), tol_(tol),
        divergence_(divergence),
        opt_(opt), p_(arch.p), k_(arch.k), state_size_(optimizer_state_size(opt, arch.k, arch.p)),
        w_(static_cast<std::size_t>(p_ * R)), us_(w_.size()), u_(w_.size()), perp_(w_.size()), pn_(w_.size()),
        a_(static_cast<std::size_t>(k_ * R)), as_(a_.size()),
        mw_(Opt == kGd ? 0 : w_.size()), vw_(Opt == kAdam ? w_.size() : 0),
        ma_(Opt == kGd ? 0 : a_.size()), va_(Opt == kAdam ? a_.size() : 0),
        scratch_(static_cast<std::size_t>(population_workspace_size(p_) + 2 * p_ + 2 * k_)) {}

  // The trials a runner works on: trials [*next, hi) not yet taken (a cursor that runners may
  // share), advanced through last_step.  w, a, w_star, a_star: row-major (B, p) / (B, k);
  // opt_state: B rows of optimizer_state_size doubles.
  struct Batch {
    std::int64_t* next;
    std::int64_t hi, last_step;
    TrialState* states;
    double* w;
    double* a;
    const double* w_star;
    const double* a_star;
    double* opt_state;
  };

  // Fills the lanes from the batch.  A step is then evaluate() followed by update(), as long as
  // live() (the two halves are separate calls so that two runners can interleave them: one
  // runner's divisions and square roots overlap with the other's loops over entries).
  void start(const Batch& batch) {
    batch_ = batch;
    live_ = 0;
    for (auto* x : {&mw_, &vw_, &ma_, &va_})
      for (V& y : *x) y = V{};
    double* w_d = reinterpret_cast<double*>(w_.data());
    double* us_d = reinterpret_cast<double*>(us_.data());
    double* a_d = reinterpret_cast<double*>(a_.data());
    double* as_d = reinterpret_cast<double*>(as_.data());
    for (int l = 0; l < L; ++l) {
      trial_[l] = -1;
      for (std::int64_t i = 0; i < p_; ++i) w_d[i * L + l] = us_d[i * L + l] = 1.0;  // harmless filler
      for (std::int64_t j = 0; j < k_; ++j) a_d[j * L + l] = as_d[j * L + l] = 0.0;
      power1_[l] = power2_[l] = 0.5;  // keeps Adam's corrections finite in an empty lane
      yy_[l] = 1.0;
      as_sq_[l] = 0.0;
      lane_sums(l);
    }
    for (int l = 0; l < L; ++l) live_ += refill(l) ? 1 : 0;
    limit_ = divergence_ * divergence_;
    margin_ = margin_of();
    double s_sq = 0.0;
    for (std::int64_t i = 0; i < p_; ++i) s_sq += arch_.s[i] * arch_.s[i];
    s_sq_ = 1.000001 * s_sq;
  }

  int live() const { return live_; }

  // The loss and the gradient factors of every lane at its current parameters.
  void evaluate() { loss_out_ = step_all(); }

  // The rest of the step loop (engine.hpp, advance) for every lane: stop tests, update, refills.
  void update() {
    TrialState* states = batch_.states;
    const std::int64_t last_step = batch_.last_step;
    double* w = batch_.w;
    double* a = batch_.a;
    double* opt_state = batch_.opt_state;
    double lr_w[L], lr_a[L];
    bool live_lane[L], stopped[L];
    if (!loss_out_ && margin_ > 0) {
      // The common step: every lane live, none stopping.
      for (int l = 0; l < L; ++l) live_lane[l] = true;
      if (n_rates_ == 1) {
        for (int l = 0; l < L; ++l) {
          lr_w[l] = rates_[0];
          lr_a[l] = rates_[1];
        }
      } else {
        for (int l = 0; l < L; ++l) {
          const std::int64_t row = std::min(step_[l] - rates_first_, n_rates_ - 1);
          lr_w[l] = rates_[2 * row];
          lr_a[l] = rates_[2 * row + 1];
        }
      }
      const bool far_out = update_all(lr_w, lr_a, live_lane, false);
      for (int l = 0; l < L; ++l) ++step_[l];
      --margin_;
      if (!far_out) return;
      // Some lane ran away: it stops (the others go on).
      for (int l = 0; l < L; ++l) {
        if (!ran_away(l)) continue;
        leave_ran_away(l, trial_[l]);
        live_ -= refill(l) ? 0 : 1;
      }
      margin_ = margin_of();
      return;
    }
    for (int l = 0; l < L; ++l) loss_[l] = loss_[l] / (4.0 * kPi);
    // Which lanes stop at this step (their state is stored before the update), and the rates
    // of the others; a stopped or empty lane gets rate 0 and is refilled below.  A lane's step
    // count lives in step_ while it runs and is written to its TrialState when it leaves.
    for (int l = 0; l < L; ++l) {
      lr_w[l] = lr_a[l] = 0.0;
      stopped[l] = false;
      const std::int64_t b = trial_[l];
      if (b < 0) continue;
      TrialState& st = states[b];
      const std::int64_t t = step_[l];
      const double loss = loss_[l];
      const bool diverged = !(loss <= divergence_);
      const bool converged = !diverged && loss <= tol_;
      if (converged) st.steps_to_tol = t;
      if (diverged || converged || t == n_steps_) {
        st.step = t;
        st.done = true;
        st.loss = loss;
        stopped[l] = true;
        store(l, w + b * p_, a + b * k_, opt_state + b * state_size_);
      } else {
        const std::int64_t row = std::min(t - rates_first_, n_rates_ - 1);
        lr_w[l] = rates_[2 * row];
        lr_a[l] = rates_[2 * row + 1];
      }
    }
    for (int l = 0; l < L; ++l) live_lane[l] = trial_[l] >= 0 && !stopped[l];
    update_all(lr_w, lr_a, live_lane, true);
    for (int l = 0; l < L; ++l) {
      const std::int64_t b = trial_[l];
      if (b < 0) continue;
      if (stopped[l]) {
        live_ -= refill(l) ? 0 : 1;
        continue;
      }
      const std::int64_t t = ++step_[l];
      if (ran_away(l)) {
        leave_ran_away(l, b);
        live_ -= refill(l) ? 0 : 1;
      } else if (t > last_step) {
        states[b].step = t;
        store(l, w + b * p_, a + b * k_, opt_state + b * state_size_);
        live_ -= refill(l) ? 0 : 1;
      }
    }
    margin_ = margin_of();
  }

 private:
  // Lane l takes the next trial of the batch that is not done and not past last_step; false
  // (the lane left empty) when there is none.
  bool refill(int l) {
    trial_[l] = -1;
    while (*batch_.next < batch_.hi) {
      const std::int64_t b = (*batch_.next)++;
      const TrialState& st = batch_.states[b];
      if (st.done || st.step > batch_.last_step) continue;
      load(l, b, st, batch_.w + b * p_, batch_.a + b * k_, batch_.w_star + b * p_, batch_.a_star + b * k_,
           batch_.opt_state + b * state_size_);
      return true;
    }
    return false;
  }

  // Steps every lane is sure to take without reaching n_steps or passing last_step: while it is
  // positive and no loss is out of (tol, divergence], a step needs no per-lane bookkeeping.
  std::int64_t margin_of() const {
    std::int64_t m = std::numeric_limits<std::int64_t>::max();
    const std::int64_t end = std::min(n_steps_, batch_.last_step);
    for (int l = 0; l < L; ++l) m = std::min(m, trial_[l] < 0 ? 0 : end - step_[l]);
    return m;
  }

  // The largest x with x / (4 pi) <= t (x / (4 pi) <= t exactly when x <= it, for every x), NaN
  // for t NaN: a few steps by ulps from t 4 pi.
  static double last_at_most(double t) {
    const double c = 4.0 * kPi;
    if (std::isnan(t)) return t;
    double x = t * c;
    while (x / c > t) x = std::nextafter(x, -std::numeric_limits<double>::infinity());
    while (x < std::numeric_limits<double>::infinity()) {
      const double y = std::nextafter(x, std::numeric_limits<double>::infinity());
      if (!(y / c <= t)) break;
      x = y;
    }
    return x;
  }

  // Whether lane l's parameters left the ball of radius divergence in the last update.
  bool ran_away(int l) const { return trial_[l] >= 0 && (!(w_sq_[l] <= limit_) || !(a_sq_[l] <= limit_)); }

  // Lane l (trial b) stops after its update: parameters out, the loss where they ran to.
  void leave_ran_away(int l, std::int64_t b) {
    TrialState& st = batch_.states[b];
    double* w = batch_.w + b * p_;
    double* a = batch_.a + b * k_;
    store(l, w, a, batch_.opt_state + b * state_size_);
    st.step = step_[l];
    st.done = true;
    st.loss = population_loss_grad(arch_.s, w, a, batch_.w_star + b * p_, batch_.a_star + b * k_, k_, p_,
                                   arch_.stride, arch_.normalize, nullptr, nullptr, scratch_.data());
  }

  void load(int l, std::int64_t b, const TrialState& st, const double* w, const double* a, const double* w_star,
            const double* a_star, const double* opt) {
    trial_[l] = b;
    step_[l] = st.step;
    const double* s = arch_.s;
    double* w_ = reinterpret_cast<double*>(this->w_.data());
    double* us_ = reinterpret_cast<double*>(this->us_.data());
    double* a_ = reinterpret_cast<double*>(this->a_.data());
    double* as_ = reinterpret_cast<double*>(this->as_.data());
    double* mw_ = reinterpret_cast<double*>(this->mw_.data());
    double* ma_ = reinterpret_cast<double*>(this->ma_.data());
    double* vw_ = reinterpret_cast<double*>(this->vw_.data());
    double* va_ = reinterpret_cast<double*>(this->va_.data());
    double yy = 0.0;
    for (std::int64_t i = 0; i < p_; ++i) {
      w_[i * L + l] = w[i];
      us_[i * L + l] = w_star[i] + s[i];
      yy += us_[i * L + l] * us_[i * L + l];
    }
    yy_[l] = yy;
    double as_sq = 0.0;
    for (std::int64_t j = 0; j < k_; ++j) as_sq += a_star[j] * a_star[j];
    as_sq_[l] = 1.000001 * as_sq;
    for (std::int64_t j = 0; j < k_; ++j) {
      a_[j * L + l] = a[j];
      as_[j * L + l] = a_star[j];
    }
    // The optimizer's state (optimizers.hpp): [b or m: w part, a part][v: w part, a part][P1, P2].
    if (Opt != kGd) {
      for (std::int64_t i = 0; i < p_; ++i) mw_[i * L + l] = opt[i];
      for (std::int64_t j = 0; j < k_; ++j) ma_[j * L + l] = opt[p_ + j];
    }
    if (Opt == kAdam) {
      for (std::int64_t i = 0; i < p_; ++i) vw_[i * L + l] = opt[p_ + k_ + i];
      for (std::int64_t j = 0; j < k_; ++j) va_[j * L + l] = opt[2 * p_ + k_ + j];
      power1_[l] = opt[2 * (p_ + k_)];
      power2_[l] = opt[2 * (p_ + k_) + 1];
    }
    lane_sums(l);
  }

  // The sums step_all starts from, for lane l's current parameters (update_all forms them for
  // every lane after an update): u = w + s, |u|^2 and u.u* (population_loss_grad and
  // angle_parts_and_perp), a.a* and the sum and squares of a - a* (non_overlapping), in their order.
  void lane_sums(int l) {
    const double* s = arch_.s;
    const double* w = reinterpret_cast<const double*>(w_.data());
    const double* us = reinterpret_cast<const double*>(us_.data());
    const double* a = reinterpret_cast<const double*>(a_.data());
    const double* as = reinterpret_cast<const double*>(as_.data());
    double* u = reinterpret_cast<double*>(u_.data());
    double xx = 0.0, xy = 0.0;
    for (std::int64_t i = 0; i < p_; ++i) {
      const double ui = w[i * L + l] + s[i];
      u[i * L + l] = ui;
      xx += ui * ui;
      xy += ui * us[i * L + l];
    }
    xx_[l] = xx;
    xy_[l] = xy;
    double a_dot = 0.0, sum_diff = 0.0, sq_diff = 0.0;
    for (std::int64_t j = 0; j < k_; ++j) {
      const double x = a[j * L + l], y = as[j * L + l];
      a_dot += x * y;
      const double d = x - y;
      sum_diff += d;
      sq_diff += d * d;
    }
    a_dot_[l] = a_dot;
    sum_diff_[l] = sum_diff;
    sq_diff_[l] = sq_diff;
  }

  void store(int l, double* w, double* a, double* opt) const {
    const double* w_ = reinterpret_cast<const double*>(this->w_.data());
    const double* a_ = reinterpret_cast<const double*>(this->a_.data());
    const double* mw_ = reinterpret_cast<const double*>(this->mw_.data());
    const double* ma_ = reinterpret_cast<const double*>(this->ma_.data());
    const double* vw_ = reinterpret_cast<const double*>(this->vw_.data());
    const double* va_ = reinterpret_cast<const double*>(this->va_.data());
    for (std::int64_t i = 0; i < p_; ++i) w[i] = w_[i * L + l];
    for (std::int64_t j = 0; j < k_; ++j) a[j] = a_[j * L + l];
    if (Opt != kGd) {
      for (std::int64_t i = 0; i < p_; ++i) opt[i] = mw_[i * L + l];
      for (std::int64_t j = 0; j < k_; ++j) opt[p_ + j] = ma_[j * L + l];
    }
    if (Opt == kAdam) {
      for (std::int64_t i = 0; i < p_; ++i) opt[p_ + k_ + i] = vw_[i * L + l];
      for (std::int64_t j = 0; j < k_; ++j) opt[2 * p_ + k_ + j] = va_[j * L + l];
      opt[2 * (p_ + k_)] = power1_[l];
      opt[2 * (p_ + k_) + 1] = power2_[l];
    }
  }

  // update_layers for the step's kind of optimizer and of gradient.
  template <bool AnyFirst>
  void update_layers_of(const V* rate_w, const V* rate_a, const V* r2, const M* first, const V* cw,
                        const V* sum_diff0, const V* g1) {
    if (Opt == kMomentum && opt_.nesterov) {
      if (rescaled_) update_layers<true, true, AnyFirst>(rate_w, rate_a, r2, first, cw, sum_diff0, g1);
      else update_layers<true, false, AnyFirst>(rate_w, rate_a, r2, first, cw, sum_diff0, g1);
    } else {
      if (rescaled_) update_layers<false, true, AnyFirst>(rate_w, rate_a, r2, first, cw, sum_diff0, g1);
      else update_layers<false, false, AnyFirst>(rate_w, rate_a, r2, first, cw, sum_diff0, g1);
    }
  }

  // The update of every lane, as in the step loop (engine.hpp), and the squared norms after it.
  // The gradient entries are formed here from step_all's per-lane factors (the same operations as
  // population_loss_grad, so the same bits) rather than stored and read back; each entry then
  // goes through the optimizer's element rule.  The same pass accumulates the sums the next
  // step starts from (u = w + s, |u|^2, u.u*, a.a*, sum and squares of a - a*), in the order of
  // population_loss_grad, so the parameters are read once per step.  live: lanes that really
  // update (the others have rate 0 and their state is not kept).
  bool update_all(const double* lr_w, const double* lr_a, const bool* live, bool exact) {
    V rate_w[R], rate_a[R], r2[R], cw[R], sum_diff0[R], g1[R];
    M first[R];
    double* rw = reinterpret_cast<double*>(rate_w);
    double* ra = reinterpret_cast<double*>(rate_a);
    double* rr = reinterpret_cast<double*>(r2);
    std::int64_t* fm = reinterpret_cast<std::int64_t*>(first);
    bool any_first = false;
    for (int l = 0; l < L; ++l) {
      rw[l] = lr_w[l];
      ra[l] = lr_a[l];
      rr[l] = 1.0;
      fm[l] = step_[l] == 0 ? -1 : 0;
      any_first = any_first || step_[l] == 0;
    }
    if (Opt == kAdam) {
      // Branch-free over the lanes: every lane's corrections, kept for the live ones only.
      SHORTCUTNET_LANE_LOOP
      for (int l = 0; l < L; ++l) {
        double p1 = power1_[l], p2 = power2_[l];
        const AdamCorrections c = adam_corrections(opt_, lr_w[l], lr_a[l], p1, p2);
        const bool on = live[l];
        power1_[l] = on ? p1 : power1_[l];
        power2_[l] = on ? p2 : power2_[l];
        rw[l] = on ? c.step_lr_w : rw[l];
        ra[l] = on ? c.step_lr_a : ra[l];
        rr[l] = on ? c.r2 : 1.0;
      }
    }
    for (int r = 0; r < R; ++r) {
      cw[r] = lv(cw_)[r];
      sum_diff0[r] = lv(sum_diff_)[r];
      g1[r] = lv(g_)[r] - 1.0;
    }
    if (Opt == kMomentum && any_first) {
      update_layers_of<true>(rate_w, rate_a, r2, first, cw, sum_diff0, g1);
    } else {
      update_layers_of<false>(rate_w, rate_a, r2, first, cw, sum_diff0, g1);
    }
    // |w|^2 and |a|^2 (the step loop's run-away test) only when a bound from the sums just formed
    // cannot settle it: |w|^2 <= 2 |w + s|^2 + 2 |s|^2 and |a|^2 <= 2 |a - a*|^2 + 2 |a*|^2, the
    // factor 2.000001 covering the roundings of the sums (relative n 2^-53 for n < 1e6 entries) and
    // 1e-300 the squares that underflow; NaN and overflow fail the test.
    const V limit = V{} + limit_;
    if (!exact && p_ < 1000000 && k_ < 1000000) {
      M unclear{};
      for (int r = 0; r < R; ++r) {
        const V bound_w = 2.000001 * lv(xx_)[r] + (2.000001 * s_sq_ + 1e-300);
        const V bound_a = 2.000001 * lv(sq_diff_)[r] + (2.000001 * lv(as_sq_)[r] + 1e-300);
        unclear |= !(bound_w <= limit) | !(bound_a <= limit);
      }
      if (!any_set(unclear)) return false;
    }
    // dot(w, w, p) and dot(a, a, k), in their order.
    const V* __restrict w = w_.data();
    const V* __restrict a = a_.data();
    V w_sq[R], a_sq[R];
    for (int r = 0; r < R; ++r) w_sq[r] = a_sq[r] = V{};
    for (std::int64_t i = 0; i < p_; ++i)
      for (int r = 0; r < R; ++r) w_sq[r] += w[i * R + r] * w[i * R + r];
    for (std::int64_t j = 0; j < k_; ++j)
      for (int r = 0; r < R; ++r) a_sq[r] += a[j * R + r] * a[j * R + r];
    M out{};
    for (int r = 0; r < R; ++r) {
      lv(w_sq_)[r] = w_sq[r];
      lv(a_sq_)[r] = a_sq[r];
      out |= !(w_sq[r] <= limit) | !(a_sq[r] <= limit);
    }
    return any_set(out);
  }

  // One entry's update by the optimizer's element rule (x: the parameter, b / v: its state).
  // AnyFirst: some lane takes its first step; without one, b = beta b + g needs no select.
  template <bool Nesterov, bool AnyFirst>
  SHORTCUTNET_LANE_INLINE static V update_entry(V x, V grad, V& b, V& v, V rate, V r2, M first, V beta, V beta1,
                                                V beta2, V eps) {
    if (Opt == kMomentum) {
      // momentum_direction
      b = AnyFirst ? (first ? grad : beta * b + grad) : beta * b + grad;
      const V d = Nesterov ? grad + beta * b : b;
      return x - rate * d;
    } else if (Opt == kAdam) {
      // adam_term
      const V one = V{} + 1.0;
      b = beta1 * b + (one - beta1) * grad;
      v = beta2 * v + (one - beta2) * (grad * grad);
      return x - rate * (b / (lane_sqrt(v) * r2 + eps));
    } else {
      return x - rate * grad;
    }
  }

  // Rescaled: some lane's gradient in w carries the factor grad_scale_ (rescaled_lane).
  template <bool Nesterov, bool Rescaled, bool AnyFirst>
  void update_layers(const V* rate_w, const V* rate_a, const V* r2, const M* first, const V* cw, const V* sum_diff0,
                     const V* g1) {
    const double* __restrict s = arch_.s;
    V* __restrict w = w_.data();
    V* __restrict u = u_.data();
    V* __restrict a = a_.data();
    V* __restrict mw = mw_.data();
    V* __restrict ma = ma_.data();
    V* __restrict vw = vw_.data();
    V* __restrict va = va_.data();
    const V* __restrict perp = perp_.data();
    const V* __restrict us = us_.data();
    const V* __restrict as = as_.data();
    const V beta = V{} + opt_.beta, beta1 = V{} + opt_.beta1, beta2 = V{} + opt_.beta2, eps = V{} + opt_.eps;
    const std::int64_t p = p_, k = k_;
    V dummy{};
    {
      V xx[R], xy[R];
      for (int r = 0; r < R; ++r) xx[r] = xy[r] = V{};
      for (std::int64_t i = 0; i < p; ++i) {
        const V si = V{} + s[i];
        for (int r = 0; r < R; ++r) {
          const std::int64_t at = i * R + r;
          const V gw = Rescaled ? (cw[r] * perp[at]) * lv(grad_scale_)[r] : cw[r] * perp[at];
          const V wi = update_entry<Nesterov, AnyFirst>(w[at], gw, Opt == kGd ? dummy : mw[at],
                                                        Opt == kAdam ? vw[at] : dummy, rate_w[r], r2[r], first[r],
                                                        beta, beta1, beta2, eps);
          w[at] = wi;
          const V ui = wi + si;
          u[at] = ui;
          xx[r] += ui * ui;
          xy[r] += ui * us[at];
        }
      }
      for (int r = 0; r < R; ++r) {
        lv(xx_)[r] = xx[r];
        lv(xy_)[r] = xy[r];
      }
    }
    {
      V a_dot[R], sum_diff[R], sq_diff[R];
      for (int r = 0; r < R; ++r) a_dot[r] = sum_diff[r] = sq_diff[r] = V{};
      for (std::int64_t j = 0; j < k; ++j)
        for (int r = 0; r < R; ++r) {
          const std::int64_t at = j * R + r;
          const V x = a[at], y = as[at];
          const V ga = (sum_diff0[r] + (kPi - 1.0) * x - g1[r] * y) * kInvTwoPi;
          const V aj = update_entry<Nesterov, AnyFirst>(x, ga, Opt == kGd ? dummy : ma[at],
                                                        Opt == kAdam ? va[at] : dummy, rate_a[r], r2[r], first[r],
                                                        beta, beta1, beta2, eps);
          a[at] = aj;
          a_dot[r] += aj * y;
          const V d = aj - y;
          sum_diff[r] += d;
          sq_diff[r] += d * d;
        }
      for (int r = 0; r < R; ++r) {
        lv(a_dot_)[r] = a_dot[r];
        lv(sum_diff_)[r] = sum_diff[r];
        lv(sq_diff_)[r] = sq_diff[r];
      }
    }
  }

  // Loss and gradient factors of every lane: population_loss_grad's normalized, non-overlapping
  // branch, from the sums update_all (or load) left for the current parameters.
  bool step_all() {
    const V* __restrict us = us_.data();
    const V* __restrict u = u_.data();
    V* __restrict perp = perp_.data();
    V* __restrict pn = pn_.data();
    const std::int64_t p = p_;
    V c[R], inv_xx[R], c2[R], pp[R];
    M near[R];
    M any{}, all = M{} - 1;
    // The branch test |x.y| > kAccurateCos sqrt(|x|^2 |y|^2) of angle_parts_and_perp, decided from
    // the squares where they are clear by a wide margin (X^2 above or below kAccurateCos^2 P by a
    // factor 1 +- 1e-12, far beyond the few roundings on either side, with P normal and finite);
    // with the square root itself when some lane is too close to call.
    M unclear{};
    for (int r = 0; r < R; ++r) {
      const V x = lane_abs(lv(xy_)[r]), prod = lv(xx_)[r] * lv(yy_)[r];
      const V sq = x * x, q = (kAccurateCos * kAccurateCos) * prod;
      const M safe = (q > 1e-280) & (q < 1e300);
      const M above = sq > q * (1.0 + 1e-12), below = sq < q * (1.0 - 1e-12);
      unclear |= ~(safe & (above | below));
      near[r] = above;
      c2[r] = pp[r] = V{};
    }
    if (any_set(unclear))
      for (int r = 0; r < R; ++r)
        near[r] = lane_abs(lv(xy_)[r]) > kAccurateCos * lane_sqrt(lv(xx_)[r] * lv(yy_)[r]);
    for (int r = 0; r < R; ++r) {
      any |= near[r];
      all &= near[r];
    }
    // angle_and_perp: the branch each lane needs (both when the lanes disagree), then a
    // per-lane choice.
    bool any_near = false, all_near = true;
    for (int e = 0; e < W; ++e) {
      any_near = any_near || any[e] != 0;
      all_near = all_near && all[e] != 0;
    }
    // c = x.y/|x|^2: by the reciprocal the accurate branch shares with c2, or by a division.
    for (int r = 0; r < R; ++r) {
      if (any_near) {
        inv_xx[r] = 1.0 / lv(xx_)[r];
        c[r] = lv(xy_)[r] * inv_xx[r];
      }
      if (!all_near) {
        const V c_far = lv(xy_)[r] / lv(xx_)[r];
        c[r] = any_near ? (near[r] ? c[r] : c_far) : c_far;
      }
    }
    if (any_near) {
      for (std::int64_t i = 0; i < p; ++i)
        for (int r = 0; r < R; ++r) {
          const std::int64_t at = i * R + r;
          const V x = u[at], y = us[at];
          V hi, lo;
          lane_two_prod(c[r], x, hi, lo);
          const V q = (y - hi) - lo;
          pn[at] = q;
          c2[r] += x * q;
        }
      for (int r = 0; r < R; ++r) c2[r] = c2[r] * inv_xx[r];
    }
    if (all_near) {
      for (std::int64_t i = 0; i < p; ++i)
        for (int r = 0; r < R; ++r) {
          const std::int64_t at = i * R + r;
          const V q = pn[at] - c2[r] * u[at];
          perp[at] = q;
          pp[r] += q * q;
        }
    } else if (any_near) {
      for (std::int64_t i = 0; i < p; ++i)
        for (int r = 0; r < R; ++r) {
          const std::int64_t at = i * R + r;
          const V x = u[at];
          const V q_far = us[at] - c[r] * x;
          const V q_near = pn[at] - c2[r] * x;
          const V q = near[r] ? q_near : q_far;
          perp[at] = q;
          pp[r] += q * q;
        }
    } else {
      for (std::int64_t i = 0; i < p; ++i)
        for (int r = 0; r < R; ++r) {
          const std::int64_t at = i * R + r;
          const V q = us[at] - c[r] * u[at];
          perp[at] = q;
          pp[r] += q * q;
        }
    }
    for (int r = 0; r < R; ++r) lv(pp_)[r] = pp[r];
    const double* __restrict xx = reinterpret_cast<const double*>(xx_);
    const double* __restrict xy = reinterpret_cast<const double*>(xy_);
    const double* __restrict ppl = reinterpret_cast<const double*>(pp_);
    const double* __restrict a_dot = reinterpret_cast<const double*>(a_dot_);
    const double* __restrict sum_diff = reinterpret_cast<const double*>(sum_diff_);
    const double* __restrict sq_diff = reinterpret_cast<const double*>(sq_diff_);
    double* __restrict loss = reinterpret_cast<double*>(loss_);
    double* __restrict g = reinterpret_cast<double*>(g_);
    double* __restrict cw = reinterpret_cast<double*>(cw_);
    // In three passes over the lanes (square roots, angle, the rest): the chain of square root,
    // division and polynomials is long, and short loop bodies let the core overlap the lanes'
    // chains (7% less per trial-step on Zen 3 than one loop); the values are the same.
    double sin_sq[L], sin_part[L], norms[L], phi[L];
    SHORTCUTNET_LANE_LOOP
    for (int l = 0; l < L; ++l) {
      sin_sq[l] = ppl[l] * xx[l];
      sin_part[l] = std::sqrt(sin_sq[l]);
      norms[l] = std::sqrt(sin_sq[l] + xy[l] * xy[l]);  // |u| |u*|
    }
    SHORTCUTNET_LANE_LOOP
    for (int l = 0; l < L; ++l) phi[l] = rational_atan2(sin_part[l], xy[l]);
    SHORTCUTNET_LANE_LOOP
    for (int l = 0; l < L; ++l) {
      const double pmg = pi_minus_g(phi[l], sin_sq[l], sin_part[l], xy[l], norms[l]);
      loss[l] = sum_diff[l] * sum_diff[l] + (kPi - 1.0) * sq_diff[l] + 2.0 * pmg * a_dot[l];  // times 4 pi
      g[l] = kPi - pmg;
      cw[l] = -a_dot[l] * (kPi - phi[l]) / (kTwoPi * norms[l]);
    }
    // A lane whose |u|^2 or |u*|^2 leaves [2^-200, 2^200] (filters of any finite scale) takes the
    // rescaled formulas of angle_parts_and_perp instead, whose bits are the one-trial path's; inside
    // that range the sums above are that path's rescaled sums times exact powers of two.
    M extreme[R], any_extreme{};
    for (int r = 0; r < R; ++r) {
      const V x = lv(xx_)[r], y = lv(yy_)[r];
      extreme[r] = !(x >= 0x1p-200) | !(x <= 0x1p200) | !(y >= 0x1p-200) | !(y <= 0x1p200);
      any_extreme |= extreme[r];
    }
    rescaled_ = any_set(any_extreme);
    if (rescaled_) {
      const std::int64_t* flag = reinterpret_cast<const std::int64_t*>(extreme);  // lane l is entry l
      for (int l = 0; l < L; ++l) {
        grad_scale_[l] = 1.0;
        if (flag[l] != 0 && trial_[l] >= 0) rescaled_lane(l);
      }
    }
    M out{};
    // loss / (4 pi) > tol exactly when loss > tol_4pi_ (and <= divergence when <= divergence_4pi_):
    // the division is monotone, so the quotient is formed only when some lane stops.
    const V tol = V{} + tol_4pi_, divergence = V{} + divergence_4pi_;
    for (int r = 0; r < R; ++r) out |= !(lv(loss_)[r] > tol) | !(lv(loss_)[r] <= divergence);
    return any_set(out);
  }

  // step_all's results for lane l by population_loss_grad's own angle and pi - g (rescaled sums).
  void rescaled_lane(int l) {
    double* u = scratch_.data();
    double* us = u + p_;
    double* perp = us + p_;
    const double* u_lanes = reinterpret_cast<const double*>(u_.data());
    const double* us_lanes = reinterpret_cast<const double*>(us_.data());
    double* perp_lanes = reinterpret_cast<double*>(perp_.data());
    for (std::int64_t i = 0; i < p_; ++i) {
      u[i] = u_lanes[i * L + l];
      us[i] = us_lanes[i * L + l];
    }
    const AngleParts parts = angle_parts_and_perp(u, us, p_, perp, true);
    const double pmg = pi_minus_g(parts.phi, parts.sin_part_sq, parts.sin_part, parts.cos_part, parts.r);
    loss_[l] = sum_diff_[l] * sum_diff_[l] + (kPi - 1.0) * sq_diff_[l] + 2.0 * pmg * a_dot_[l];
    g_[l] = kPi - pmg;
    // grad_w = (cw perp) scale_x, as population_loss_grad forms it.
    cw_[l] = -a_dot_[l] * (kPi - parts.phi) / (kTwoPi * parts.r);
    grad_scale_[l] = parts.scale_x;
    for (std::int64_t i = 0; i < p_; ++i) perp_lanes[i * L + l] = perp[i];
  }

  Architecture arch_;
  const double* rates_;
  std::int64_t rates_first_, n_rates_, n_steps_;
  double tol_, divergence_, limit_ = 0.0;
  double tol_4pi_ = last_at_most(tol_), divergence_4pi_ = last_at_most(divergence_);
  Batch batch_{};
  int live_ = 0;
  std::int64_t margin_ = 0;
  bool loss_out_ = false;
  OptimizerSpec opt_;
  std::int64_t p_, k_, state_size_;
  // Per entry, [entry][vector]: lane l of entry i is double i L + l.
  std::vector<V> w_, us_, u_, perp_, pn_, a_, as_;
  std::vector<V> mw_, vw_, ma_, va_;  // optimizer state per lane: b or m, and v (Adam)
  std::vector<double> scratch_;
  // Per lane, zero until start() fills them (the vector loops read every lane, filled or not).
  std::int64_t trial_[L] = {}, step_[L] = {};
  alignas(lanes::kVectorBytes) double power1_[L] = {}, power2_[L] = {};  // Adam's running powers
  alignas(lanes::kVectorBytes) double yy_[L] = {};
  alignas(lanes::kVectorBytes) double loss_[L] = {};  // 4 pi times the loss until update's per-lane tests
  // The sums of the current parameters (lane_sums, update_all -> step_all).
  alignas(lanes::kVectorBytes) double xx_[L] = {}, xy_[L] = {}, a_dot_[L] = {}, sum_diff_[L] = {}, sq_diff_[L] = {};
  alignas(lanes::kVectorBytes) double pp_[L] = {}, w_sq_[L] = {}, a_sq_[L] = {}, as_sq_[L] = {};
  double s_sq_ = 0.0;  // |s|^2, rounded up (for update_all's bound)
  // Per-lane factors of the gradient (step_all -> update_all): grad_a from g_ and sum_diff_,
  // grad_w = cw_ perp.
  alignas(lanes::kVectorBytes) double g_[L] = {}, cw_[L] = {};
  // The factor of grad_w of the lanes rescaled_lane evaluated (1 elsewhere), when rescaled_.
  alignas(lanes::kVectorBytes) double grad_scale_[L] = {};
  bool rescaled_ = false;
};

// B trials of the normalized, non-overlapping model through last_step: groups of trials handed
// to threads, each thread running them in two LaneRunners of kLaneVectors native vectors of trials.
#ifndef SHORTCUTNET_LANE_VECTORS
#define SHORTCUTNET_LANE_VECTORS (lanes::kVectorBytes == 16 ? 4 : 2)
#endif
constexpr int kLaneVectors = SHORTCUTNET_LANE_VECTORS;  // native vectors of trials in lockstep per thread
constexpr std::int64_t kLaneGroup = 64;  // trials handed to a thread at a time

template <int Opt>
inline void run_lane_groups_of(const LaneArgs& args) {
  const Architecture arch{args.s, args.k, args.p, args.stride, true};
  const std::int64_t batch = args.batch;
  const std::int64_t n_groups = (batch + kLaneGroup - 1) / kLaneGroup;
  TrialState* states = static_cast<TrialState*>(args.states);
#ifdef SHORTCUTNET_OPENMP
#pragma omp parallel num_threads(args.threads)
#endif
  {
    // Two runners per thread, each evaluating while the other updates.
    LaneRunner<kLaneVectors, Opt> first(arch, args.rates, args.rates_first, args.n_rates, args.n_steps, args.tol,
                                        args.divergence, args.opt);
    LaneRunner<kLaneVectors, Opt> second(arch, args.rates, args.rates_first, args.n_rates, args.n_steps, args.tol,
                                         args.divergence, args.opt);
#ifdef SHORTCUTNET_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
    for (std::int64_t g = 0; g < n_groups; ++g) {
      std::int64_t next = g * kLaneGroup;
      const typename LaneRunner<kLaneVectors, Opt>::Batch group{
          &next, std::min(batch, (g + 1) * kLaneGroup), args.last_step, states, args.w, args.a, args.w_star,
          args.a_star, args.opt_state};
      first.start(group);
      second.start(group);
      if (second.live() > 0) second.evaluate();
      while (first.live() > 0 || second.live() > 0) {
        if (first.live() > 0) first.evaluate();
        if (second.live() > 0) second.update();
        if (second.live() > 0) second.evaluate();
        if (first.live() > 0) first.update();
      }
    }
  }
}

inline void run_lane_groups(const LaneArgs& args) {
  switch (args.opt.kind) {
    case kMomentum: return run_lane_groups_of<kMomentum>(args);
    case kAdam: return run_lane_groups_of<kAdam>(args);
    default: return run_lane_groups_of<kGd>(args);
  }
}

}  // namespace shortcutnet
