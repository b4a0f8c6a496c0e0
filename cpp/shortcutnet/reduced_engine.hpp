// The reduced engine (docs/reduced.md): population gradient descent or momentum on the
// non-overlapping model, B trials in lanes of coordinates (reduced.hpp) at a cost per step that
// does not depend on k or p.  Each thread keeps kLanes trials in structure-of-arrays form and
// advances them in lockstep; a lane whose trial ends writes its results, rebuilds (w, a) and takes
// the next trial.  Trials are independent and every lane performs the same operations, so results
// do not depend on the number of threads, the chunk length or the instruction set.  Memory beyond
// the caller's arrays: kLanes (2 p + 3 k) doubles per thread.
//
// Header-only, no Python.  Compiled once per instruction set with engine.hpp (src/engine_isa.inc).
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "shortcutnet/engine.hpp"
#include "shortcutnet/philox.hpp"
#include "shortcutnet/reduced.hpp"

#if defined(__SSE2__)
#include <immintrin.h>
#endif
#ifdef SHORTCUTNET_OPENMP
#include <omp.h>
#endif

namespace shortcutnet {
namespace SHORTCUTNET_ISA_NAMESPACE {

// Everything the reduced trials share (the full engine's EngineConfig, its source unused), and
// where they read and write.
struct ReducedConfig : EngineConfig {
  std::int64_t batch;
  const double* w0;  // (B, p)
  const double* a0;  // (B, k)
  double* w;         // (B, p): the final w
  double* a;         // (B, k)
  const double* w_star;
  const double* a_star;
  std::int64_t w_star_rows, a_star_rows;  // 1 (shared by all trials) or B
  EngineOutputs out;
};

// Flush-to-zero and denormals-are-zero while the lanes step: converged runs drive coordinates and
// gradients towards zero, and every subnormal operand costs about a hundred cycles.  Restored on
// exit; the set-up and the results are computed with the caller's mode.
class FlushDenormals {
 public:
#if defined(__SSE2__)
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040); }
  ~FlushDenormals() { _mm_setcsr(saved_); }

 private:
  unsigned saved_;
#endif
};

// old where keep, else fresh.  With AVX-512 a select, which compiles to a masked operation.  Without
// it, a blend of bits: written `keep ? old : fresh`, GCC turns the lane update into a store only
// where !keep, a masked store, which AVX2 on AMD cores pays for with a slow microcoded VMASKMOVPD
// and a test and branch around it; the blend keeps the store unconditional.
inline double keep_or(bool keep, double old, double fresh) {
#if defined(__AVX512F__)
  return keep ? old : fresh;
#else
  using detail::bits_as;
  const std::uint64_t mask = std::uint64_t(0) - static_cast<std::uint64_t>(keep);
  return bits_as<double>((bits_as<std::uint64_t>(old) & mask) | (bits_as<std::uint64_t>(fresh) & ~mask));
#endif
}

// What the engine needs of one thread's lanes, whatever their template arguments.
class LaneSet {
 public:
  virtual ~LaneSet() = default;
  virtual bool busy() const = 0;
  // True while a lane holds a trial that the rates at hand take further.
  virtual bool can_advance() const = 0;
  // Steps and refills for about budget_ns of wall time.
  virtual void run(double budget_ns, RowBuffer* rows, std::int64_t record_every) = 0;
  // The rates of the steps cfg.rates_first .. cfg.rates_last (engine.hpp, EngineConfig).
  virtual void set_rates(const EngineConfig& cfg) = 0;
};

// The optimizers of the lanes: gd, heavy-ball and Nesterov momentum (optimizers.hpp).
enum LaneOptimizer : int { kGdLanes = 0, kHeavyBallLanes = 1, kNesterovLanes = 2 };

// Lanes per thread.  Each pass of a step over many lanes lets the core overlap the long dependency
// chains of several of them (32 ran 1.3 times faster than 16, and 64 no faster than 32, on Zen 3
// AVX2); a batch of a few trials (train's single one) runs in one vector's worth.
constexpr int kBatchLanes = 32;
constexpr int kFewLanes = 4;

// The kLanes lanes of one thread (kBatchLanes, or kFewLanes for a batch of a few trials).
// Normalize: the model; Opt: a LaneOptimizer; ConstRate: one row of rates for every step.  With a
// window of rates (a callable schedule, engine.hpp) a lane whose trial needs a step past the window
// waits, and new trials start only while the window holds step 0: the engine then asks for the next
// window, or for step 0's again.
template <bool Normalize, int Opt, bool ConstRate, int kLanes>
class ReducedLanes : public LaneSet {
 public:
  ReducedLanes(const ReducedConfig& cfg, std::atomic<std::int64_t>* next)
      : cfg_(cfg), next_(next), k_(cfg.arch.k), p_(cfg.arch.p),
        bases_(static_cast<std::size_t>(kLanes * block_size())),
        work_(static_cast<std::size_t>(reduced::setup_workspace_size(k_, p_))),
        shared_teacher_(cfg.w_star_rows == 1 && cfg.a_star_rows == 1) {
    if (shared_teacher_) {
      shared_e1_.resize(static_cast<std::size_t>(p_));
      shared_f_.resize(static_cast<std::size_t>(2 * k_));
      shared_frame_ = reduced::set_up_teacher(cfg.arch, cfg.w_star, cfg.a_star, shared_e1_.data(), shared_f_.data(),
                                              work_.data());
    }
    for (int l = 0; l < kLanes; ++l) park(l);
  }

  // True while a lane holds a trial.
  bool busy() const override {
    for (int l = 0; l < kLanes; ++l)
      if (trial_[l] >= 0) return true;
    return false;
  }

  bool can_advance() const override {
    for (int l = 0; l < kLanes; ++l)
      if (trial_[l] >= 0 && t_[l] <= static_cast<double>(cfg_.rates_last)) return true;
    return false;
  }

  void set_rates(const EngineConfig& cfg) override {
    copy_rate_rows(cfg, cfg_);
  }

  // About budget_ns of wall time: lockstep steps of the lanes, refilling them from the shared
  // cursor.  rows (one trial only) receives the trajectory every record_every steps and at the
  // last one.  The clock, not a cost estimate, ends the chunk, so that the threads' chunks end
  // together however long the set-up of trials takes (at k = 1000, refilling the lanes takes as
  // long as a thousand lockstep steps: a chunk sized by estimates would end early for a thread
  // that refills, which would then wait for the other).
  void run(double budget_ns, RowBuffer* rows, std::int64_t record_every) override {
    const auto start = Clock::now();
    fill_empty_lanes();
    for (;;) {
      const auto before = Clock::now();
      const double left = budget_ns - std::chrono::duration<double, std::nano>(before - start).count();
      if (!(left > 0.0) || !can_advance()) return;
      const double step_ns = group_step_ns_ > 0.0 ? group_step_ns_ : kGroupStepEstimateNs;
      std::int64_t steps = static_cast<std::int64_t>(std::max(1.0, std::min(1e15, left / step_ns)));
      if (!(group_step_ns_ > 0.0)) steps = std::min(steps, kProbeGroupSteps);
      if (rows != nullptr) {
        const std::int64_t room = rows->capacity - rows->count - 2;
        if (room < 1) return;
        steps = std::min(steps, room * record_every);
      }
      const std::int64_t done_steps = step_until_a_lane_stops(steps, rows, record_every);
      if (done_steps > 0)
        group_step_ns_ = std::max(1.0, nanoseconds_since(before) / static_cast<double>(done_steps));
      finish_stopped_lanes();
    }
  }

 private:
  // The time of one lockstep step of all lanes (chunk sizing only: results do not depend on it):
  // measured, 0 until kProbeGroupSteps steps at most have been timed, which the estimate sizes.
  static constexpr std::int64_t kProbeGroupSteps = 64;
  static constexpr double kGroupStepEstimateNs = kLanes * 3.0;
  double group_step_ns_ = 0.0;

  // An empty lane: harmless finite values, never finished again.
  void park(int l) {
    trial_[l] = -1;
    active_[l] = 0.0;
    x_[l] = 1.0;
    y_[l] = 0.0;
    t_[l] = 0.0;
    al0_[l] = al1_[l] = al2_[l] = 0.0;
    A0_[l] = C0_[l] = C1_[l] = 0.0;
    ah_[l] = ch0_[l] = ch1_[l] = cg0_[l] = cg1_[l] = 0.0;
    rs_[l] = 1.0;
    x0_[l] = 1.0;
    y0_[l] = om1_[l] = om2_[l] = omp_[l] = 0.0;
    bx_[l] = by_[l] = b0_[l] = b1_[l] = b2_[l] = 0.0;
    stop_[l] = 0.0;
  }

  void fill_empty_lanes() {
    for (int l = 0; l < kLanes; ++l)
      if (trial_[l] < 0) take_next_trial(l);
  }

  void take_next_trial(int l) {
    if (cfg_.rates_first > 0) {  // the window no longer holds step 0
      park(l);
      return;
    }
    const std::int64_t b = next_->fetch_add(1);
    if (b >= cfg_.batch) {
      park(l);
      return;
    }
    // The lane's block: e1 (p), e2 (p), f1 f2 (2 k), f3 (k); e1 and f1 f2 are the shared teacher's
    // where there is one.
    double* block = bases_.data() + static_cast<std::size_t>(l) * static_cast<std::size_t>(block_size());
    double* e2 = block + p_;
    double* f3 = block + 2 * p_ + 2 * k_;
    reduced::TeacherFrame frame = shared_frame_;
    e1_[l] = shared_e1_.data();
    f_[l] = shared_f_.data();
    const std::int64_t ws_row = cfg_.w_star_rows == 1 ? 0 : b, as_row = cfg_.a_star_rows == 1 ? 0 : b;
    const double* w_star = cfg_.w_star + ws_row * p_;
    if (!shared_teacher_) {
      frame = reduced::set_up_teacher(cfg_.arch, w_star, cfg_.a_star + as_row * k_, block, block + 2 * p_,
                                      work_.data());
      e1_[l] = block;
      f_[l] = block + 2 * p_;
    }
    const reduced::Coordinates c = reduced::set_up_trial(cfg_.arch, frame, e1_[l], f_[l], w_star, cfg_.w0 + b * p_,
                                                         cfg_.a0 + b * k_, e2, f3, work_.data());
    coords_[l] = c;
    trial_[l] = b;
    active_[l] = 1.0;
    x_[l] = c.x0;
    y_[l] = c.y0;
    al0_[l] = c.alpha0[0];
    al1_[l] = c.alpha0[1];
    al2_[l] = c.alpha0[2];
    A0_[l] = c.A[0];  // A = (A0, 0, 0), C = (C0, C1, 0): reduced.hpp, loss_grad_normalized
    C0_[l] = c.C[0];
    C1_[l] = c.C[1];
    const reduced::ScaledTeacher st = reduced::scaled_teacher(c.A[0], c.C[0], c.C[1]);
    ah_[l] = st.ah;
    ch0_[l] = st.ch0;
    ch1_[l] = st.ch1;
    cg0_[l] = st.cg0;
    cg1_[l] = st.cg1;
    rs_[l] = c.rho_star;
    x0_[l] = c.x0;
    y0_[l] = c.y0;
    om1_[l] = c.om1;
    om2_[l] = c.om2;
    omp_[l] = c.om_perp_sq;
    bx_[l] = by_[l] = b0_[l] = b1_[l] = b2_[l] = 0.0;
    t_[l] = 0.0;
    stop_[l] = 0.0;
  }

  // Lockstep steps (docs/training.md section 4 in coordinates) until one lane's trial stops, every
  // lane waits for rates, or max_steps have been taken; returns the number taken.
  std::int64_t step_until_a_lane_stops(std::int64_t max_steps, RowBuffer* rows, std::int64_t record_every) {
    const double lim = divergence_sq(), divergence = cfg_.th.divergence, tol = cfg_.tol;
    const double last_step = static_cast<double>(cfg_.n_steps);
    const double last_rate = static_cast<double>(cfg_.rates_last);
    const double* rates = cfg_.rates;
    const double beta = cfg_.opt.beta;
    const double lr_w0 = rates[0], lr_a0 = rates[1];
    std::int64_t taken = 0;
    if (!ConstRate) load_rates();
    FlushDenormals flush;
    while (taken < max_steps) {
      // The step in passes over the lanes: the filter's norm, the reduction of its angle with the
      // division, the angle's polynomial, the loss and gradient, the update.  The longest
      // dependency chain runs through the first three, and a short loop body lets the core overlap
      // the chains of several lanes (one loop over the whole step ran 1.5 times slower on Zen 3);
      // the values and their bits are the same.
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) rho_[l] = std::sqrt(x_[l] * x_[l] + y_[l] * y_[l]);
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) {
        const reduced::AngleArgument t = reduced::angle_argument(x_[l], y_[l], rho_[l]);
        arg_[l] = t.arg;
        base_hi_[l] = t.base_hi;
        base_lo_[l] = t.base_lo;
        q_[l] = t.q;
      }
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) {
        const double rest = reduced::atan_small_rest(arg_[l]);
        rest_[l] = rest;
        phi_[l] = reduced::angle_of({arg_[l], base_hi_[l], base_lo_[l], q_[l]}, rest);
      }
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) {
        const reduced::FilterAngle fa{rho_[l], phi_[l], q_[l], rest_[l], base_hi_[l] == 0.0};
        const reduced::StepValues v =
            Normalize ? reduced::loss_grad_normalized(x_[l], y_[l], al0_[l], al1_[l], al2_[l],
                                                      {A0_[l], ah_[l], ch0_[l], ch1_[l], cg0_[l], cg1_[l]}, fa)
                      : reduced::loss_grad_unnormalized(x_[l], y_[l], al0_[l], al1_[l], al2_[l], A0_[l], C0_[l],
                                                        C1_[l], rs_[l], fa);
        loss_[l] = v.loss;
        a_err_sq_[l] = v.a_err_sq;
        gx_[l] = v.gx;
        gy_[l] = v.gy;
        g0_[l] = v.g0;
        g1_[l] = v.g1;
        g2_[l] = v.g2;
      }
      // The trajectory's columns of lane 0 are those before the update.
      const double al0_of_lane0 = al0_[0], wn2_of_lane0 = rows != nullptr ? w_norm_sq(0, x_[0], y_[0]) : 0.0;
      int any_stop = 0, any_move = 0;
      // Bitwise & and | on the lanes' flags, not && and ||: short-circuits are branches, which
      // keep the loop from vectorizing.
#pragma omp simd reduction(| : any_stop, any_move)
      for (int l = 0; l < kLanes; ++l) {
        const double x = x_[l], y = y_[l], al0 = al0_[l], al1 = al1_[l], al2 = al2_[l];
        const double gx = gx_[l], gy = gy_[l], g0 = g0_[l], g1 = g1_[l], g2 = g2_[l], loss = loss_[l];
        const double t = t_[l];
        const bool active = active_[l] != 0.0;
        const bool ends = ends_at(l, x, y, al0, al1, al2, t, loss, lim, divergence, tol).any;
        const bool stop = active & (ends | (t == last_step));
        const bool waits = t > last_rate;  // its step's rate is not in the window yet
        const bool hold = stop | !active | waits;
        const double lr_w = ConstRate ? lr_w0 : lr_w_[l], lr_a = ConstRate ? lr_a0 : lr_a_[l];
        double dx = gx, dy = gy, d0 = g0, d1 = g1, d2 = g2;
        if (Opt != kGdLanes) {
          // b = g at step 0 is beta 0 + g: the buffers start at zero.
          const double bx = beta * bx_[l] + gx;
          const double by = beta * by_[l] + gy;
          const double b0 = beta * b0_[l] + g0;
          const double b1 = beta * b1_[l] + g1;
          const double b2 = beta * b2_[l] + g2;
          const bool nesterov = Opt == kNesterovLanes;
          dx = nesterov ? gx + beta * bx : bx;
          dy = nesterov ? gy + beta * by : by;
          d0 = nesterov ? g0 + beta * b0 : b0;
          d1 = nesterov ? g1 + beta * b1 : b1;
          d2 = nesterov ? g2 + beta * b2 : b2;
          bx_[l] = keep_or(hold, bx_[l], bx);
          by_[l] = keep_or(hold, by_[l], by);
          b0_[l] = keep_or(hold, b0_[l], b0);
          b1_[l] = keep_or(hold, b1_[l], b1);
          b2_[l] = keep_or(hold, b2_[l], b2);
        }
        x_[l] = keep_or(hold, x, x - lr_w * dx);
        y_[l] = keep_or(hold, y, y - lr_w * dy);
        al0_[l] = keep_or(hold, al0, al0 - lr_a * d0);
        al1_[l] = keep_or(hold, al1, al1 - lr_a * d1);
        al2_[l] = keep_or(hold, al2, al2 - lr_a * d2);
        t_[l] = keep_or(hold, t, t + 1.0);
        stop_[l] = stop ? 1.0 : 0.0;
        any_stop |= stop ? 1 : 0;
        any_move |= hold ? 0 : 1;
      }
      if (!any_stop && !any_move) break;
      ++taken;
      if (!ConstRate) load_rates();
      if (rows != nullptr && trial_[0] >= 0) {
        // Lane 0 stopped at t_[0], moved from t_[0] - 1, or waits (nothing to record).
        const bool stopped = stop_[0] != 0.0, moved = !stopped && t_[0] - 1.0 <= last_rate;
        const std::int64_t t = static_cast<std::int64_t>(stopped ? t_[0] : t_[0] - 1.0);
        if (stopped || (moved && t % record_every == 0))
          (*rows)(t, observation(0, al0_of_lane0, wn2_of_lane0), std::numeric_limits<double>::quiet_NaN());
      }
      if (any_stop) break;
    }
    return taken;
  }

  // The rates of each lane's current step: row t - rates_first of the rows (the last repeating;
  // any row for lanes that wait or are empty).  Kept per lane rather than gathered in the step
  // loop, where the gather keeps the loop from vectorizing.
  void load_rates() {
    const std::int64_t last_row = cfg_.n_rates - 1;
    for (int l = 0; l < kLanes; ++l) {
      const std::int64_t row =
          std::max<std::int64_t>(0, std::min(static_cast<std::int64_t>(t_[l]) - cfg_.rates_first, last_row));
      lr_w_[l] = cfg_.rates[2 * row];
      lr_a_[l] = cfg_.rates[2 * row + 1];
    }
  }

  // The trajectory's columns for lane l at the step just evaluated (before its update, which moved
  // alpha_0 from al0 and |w|^2 from wn2).
  Observation observation(int l, double al0, double wn2) const {
    Observation o;
    o.loss = loss_[l];
    o.phi = phi_[l];
    o.a_dot_astar = A0_[l] * al0;
    o.a_err = std::sqrt(a_err_sq_[l]);
    o.w_norm = std::sqrt(wn2);
    return o;
  }

  void finish_stopped_lanes() {
    for (int l = 0; l < kLanes; ++l) {
      if (stop_[l] == 0.0 || trial_[l] < 0) continue;
      const std::int64_t b = trial_[l];
      const reduced::Coordinates& c = coords_[l];
      const double alpha[3] = {al0_[l], al1_[l], al2_[l]};
      const EngineOutputs& out = cfg_.out;
      out.loss[b] = loss_[l];
      out.phi[b] = phi_[l];
      const std::int64_t steps = static_cast<std::int64_t>(t_[l]);
      out.steps[b] = steps;
      // A stopped lane holds the state it stopped at: the test of the step loop, repeated.
      const bool converged = ends_at(l, x_[l], y_[l], al0_[l], al1_[l], al2_[l], t_[l], loss_[l], divergence_sq(),
                                     cfg_.th.divergence, cfg_.tol)
                                 .converged;
      out.steps_to_tol[b] = converged ? steps : -1;
      out.outcome[b] = reduced::classify(c, Normalize, k_, x_[l], y_[l], alpha, loss_[l], phi_[l],
                                         std::sqrt(w_norm_sq(l, x_[l], y_[l])),
                                         cfg_.th);
      const double* block = bases_.data() + static_cast<std::size_t>(l) * static_cast<std::size_t>(block_size());
      reduced::rebuild(c, e1_[l], block + p_, f_[l], block + 2 * p_ + 2 * k_, k_, p_, x_[l], y_[l], alpha,
                       cfg_.w0 + b * p_, cfg_.a0 + b * k_, cfg_.w + b * p_, cfg_.a + b * k_);
      take_next_trial(l);
    }
  }

  std::int64_t block_size() const { return 2 * p_ + 3 * k_; }

  double divergence_sq() const { return cfg_.th.divergence * cfg_.th.divergence; }

  // |w|^2 of lane l at filter coordinates (x, y).
  SHORTCUTNET_LANE_INLINE double w_norm_sq(int l, double x, double y) const {
    const double wx = om1_[l] + (x - x0_[l]), wy = om2_[l] + (y - y0_[l]);
    return (wx * wx + wy * wy) + omp_[l];
  }

  // Whether lane l's trial ends at a state with this loss (docs/training.md section 4), and whether
  // by convergence.  Bitwise & and |: the step loop calls it once per lane.
  struct Ending {
    bool any, converged;
  };
  SHORTCUTNET_LANE_INLINE Ending ends_at(int l, double x, double y, double al0, double al1, double al2, double t,
                                         double loss, double lim, double divergence, double tol) const {
    const double wn2 = w_norm_sq(l, x, y);
    const double an2 = (al0 * al0 + al1 * al1) + al2 * al2;
    const bool runaway = (t > 0.0) & !((wn2 <= lim) & (an2 <= lim));
    const bool diverged = !(loss <= divergence);
    const bool converged = !runaway & !diverged & (loss <= tol);
    return {static_cast<bool>(runaway | diverged | converged), converged};
  }

  ReducedConfig cfg_;
  std::atomic<std::int64_t>* next_;
  std::int64_t k_, p_;
  std::vector<double> bases_;
  std::vector<double> work_;
  bool shared_teacher_;
  std::vector<double> shared_e1_, shared_f_;
  reduced::TeacherFrame shared_frame_{};
  const double* e1_[kLanes] = {};
  const double* f_[kLanes] = {};
  reduced::Coordinates coords_[kLanes];
  std::int64_t trial_[kLanes];
  alignas(64) double x_[kLanes], y_[kLanes], al0_[kLanes], al1_[kLanes], al2_[kLanes];
  alignas(64) double A0_[kLanes], C0_[kLanes], C1_[kLanes], rs_[kLanes];
  alignas(64) double ah_[kLanes], ch0_[kLanes], ch1_[kLanes], cg0_[kLanes], cg1_[kLanes];  // ScaledTeacher
  alignas(64) double x0_[kLanes], y0_[kLanes], om1_[kLanes], om2_[kLanes], omp_[kLanes];
  alignas(64) double bx_[kLanes], by_[kLanes], b0_[kLanes], b1_[kLanes], b2_[kLanes];
  alignas(64) double loss_[kLanes], phi_[kLanes], a_err_sq_[kLanes];
  alignas(64) double lr_w_[kLanes], lr_a_[kLanes];
  alignas(64) double rho_[kLanes], q_[kLanes], rest_[kLanes];  // the step's FilterAngle, its phi in phi_
  alignas(64) double arg_[kLanes], base_hi_[kLanes], base_lo_[kLanes];  // its AngleArgument
  alignas(64) double gx_[kLanes], gy_[kLanes], g0_[kLanes], g1_[kLanes], g2_[kLanes];
  // Per-lane step counts and flags as doubles (steps are exact below 2^53): 64-bit integer compares
  // do not vectorize on baseline x86-64.
  alignas(64) double t_[kLanes], active_[kLanes], stop_[kLanes];
};

// The lanes for a configuration.
template <bool Normalize, int Opt, bool ConstRate>
LaneSet* make_lanes_of(const ReducedConfig& cfg, std::atomic<std::int64_t>* next) {
  if (cfg.batch <= kFewLanes) return new ReducedLanes<Normalize, Opt, ConstRate, kFewLanes>(cfg, next);
  return new ReducedLanes<Normalize, Opt, ConstRate, kBatchLanes>(cfg, next);
}

template <bool Normalize, int Opt>
LaneSet* make_lanes_of(const ReducedConfig& cfg, std::atomic<std::int64_t>* next) {
  if (cfg.n_rates == 1 && cfg.rates_last >= cfg.n_steps) return make_lanes_of<Normalize, Opt, true>(cfg, next);
  return make_lanes_of<Normalize, Opt, false>(cfg, next);
}

template <bool Normalize>
LaneSet* make_lanes_of(const ReducedConfig& cfg, std::atomic<std::int64_t>* next) {
  if (cfg.opt.kind != kMomentum) return make_lanes_of<Normalize, kGdLanes>(cfg, next);
  if (cfg.opt.nesterov) return make_lanes_of<Normalize, kNesterovLanes>(cfg, next);
  return make_lanes_of<Normalize, kHeavyBallLanes>(cfg, next);
}

inline LaneSet* make_lane_set(const ReducedConfig& cfg, std::atomic<std::int64_t>* next) {
  return cfg.arch.normalize ? make_lanes_of<true>(cfg, next) : make_lanes_of<false>(cfg, next);
}

// The reduced engine behind the plain interface of engine_entry.hpp.  Lanes write each trial's
// results as it ends, so finish() has nothing left to do.
class ReducedEngine : public EngineBase {
 public:
  explicit ReducedEngine(const EngineArgs& args) : cfg_(reduced_config_of(args)), record_every_(args.record_every) {
    const std::int64_t groups = (args.batch + kBatchLanes - 1) / kBatchLanes;
    const int workers = args.record_every > 0 ? 1 : static_cast<int>(std::max<std::int64_t>(
                                                        1, std::min<std::int64_t>(cfg_.threads, groups)));
    for (std::int64_t b = 0; b < args.batch; ++b) args.out.train_loss[b] = std::numeric_limits<double>::quiet_NaN();
    for (int i = 0; i < workers; ++i) lanes_.emplace_back(make_lane_set(cfg_, &next_));
  }

  bool run_chunk(RowBuffer* rows, std::int64_t record_every) override {
    const int workers = static_cast<int>(lanes_.size());
    if (workers == 1) {
      lanes_[0]->run(kChunkNs, rows, record_every);
    } else {
#ifdef SHORTCUTNET_OPENMP
#pragma omp parallel num_threads(workers)
      lanes_[static_cast<std::size_t>(omp_get_thread_num())]->run(kChunkNs, nullptr, 0);
#endif
    }
    if (next_.load() < cfg_.batch) return false;
    for (const auto& lanes : lanes_)
      if (lanes->busy()) return false;
    return true;
  }

  // Once no lane can go on: the step after the window when some trial waits there, step 0 when
  // every lane is empty and trials remain to start.
  std::int64_t rates_wanted() const override {
    if (cfg_.rates_first == 0 && cfg_.rates_last >= cfg_.n_steps) return -1;
    bool waiting = false;
    for (const auto& lanes : lanes_) {
      if (lanes->can_advance()) return -1;
      waiting = waiting || lanes->busy();
    }
    if (waiting) return cfg_.rates_last + 1;
    return next_.load() < cfg_.batch && cfg_.rates_first > 0 ? 0 : -1;
  }

  void set_rates(const double* rates, std::int64_t first, std::int64_t n, bool window) override {
    set_rate_rows(cfg_, rates, first, n, window);
    for (const auto& lanes : lanes_) lanes->set_rates(cfg_);
  }

  std::int64_t record_every() const override { return record_every_; }
  void finish() override {}

 private:
  static ReducedConfig reduced_config_of(const EngineArgs& args) {
    ReducedConfig cfg;
    static_cast<EngineConfig&>(cfg) = config_of(args);
    cfg.batch = args.batch;
    cfg.w0 = args.w_start;
    cfg.a0 = args.a_start;
    cfg.w = args.w;
    cfg.a = args.a;
    cfg.w_star = args.w_star;
    cfg.a_star = args.a_star;
    cfg.w_star_rows = args.w_star_rows;
    cfg.a_star_rows = args.a_star_rows;
    cfg.out = args.out;
    return cfg;
  }

  ReducedConfig cfg_;
  std::int64_t record_every_;
  std::atomic<std::int64_t> next_{0};
  std::vector<std::unique_ptr<LaneSet>> lanes_;
};

}  // namespace SHORTCUTNET_ISA_NAMESPACE
}  // namespace shortcutnet
