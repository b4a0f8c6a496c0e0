// The training engine's runner (docs/training.md section 4): B independent trials, each a gradient
// source (gradient_sources.hpp) followed by an optimizer (optimizers.hpp), advanced in chunks of
// about kChunkNs of measured time per thread so that the caller can check for interrupts between
// chunks, and through the steps the caller has given rates for (set_rates brings more).
//   - The paper's model under the population gradient runs in lockstep lanes (lane_runner.hpp).
//   - Everything else runs one trial at a time per thread (SlotRunner): a thread keeps its trial,
//     and the trial's training set, across chunks, and takes the next trial when it ends.
// Trials are independent and every step's sums have a fixed order, so results do not depend on
// the chunk length, the number of threads or the instruction set; one trial with a recorded
// trajectory (train) is the same computation as trial b of a batch (run_trials).
//
// Header-only, no Python.  Compiled once per instruction set (src/engine_isa.inc).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "shortcutnet/engine_entry.hpp"
#include "shortcutnet/gradient_sources.hpp"
#include "shortcutnet/lane_runner.hpp"
#include "shortcutnet/optimizers.hpp"
#include "shortcutnet/trials.hpp"

#ifdef SHORTCUTNET_OPENMP
#include <omp.h>
#endif

namespace shortcutnet {
namespace SHORTCUTNET_ISA_NAMESPACE {

// Wall time per thread between two interrupt checks: 0.02 s, so that Ctrl-C is seen within a
// fraction of a second.  Chunks are sized by the measured time of the steps before them.
constexpr double kChunkNs = 2e7;
// Steps a one-trial slot takes before it has measured a step's time.
constexpr std::int64_t kProbeSteps = 4;

using Clock = std::chrono::steady_clock;

inline double nanoseconds_since(Clock::time_point start) {
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count();
}

// Everything the trials share.
struct EngineConfig {
  Architecture arch;
  // (n_rates, 2): (lr_w, lr_a) of step t in row min(t - rates_first, n_rates - 1).  The rows cover
  // the steps through rates_last (the last row repeating when that is n_steps): no trial advances
  // past rates_last until set_rates brings the next rows.
  const double* rates;
  std::int64_t rates_first, n_rates, rates_last, n_steps;
  double tol;
  Thresholds th;
  OptimizerSpec opt;
  SourceSpec source;
  int threads;
};

// The rows of rates of from (set_rate_rows) into to, the rest of to kept.
inline void copy_rate_rows(const EngineConfig& from, EngineConfig& to) {
  to.rates = from.rates;
  to.rates_first = from.rates_first;
  to.n_rates = from.n_rates;
  to.rates_last = from.rates_last;
}

// The B trials: parameters (updated in place), teachers, seeds and per-trial state.
struct TrialArrays {
  std::int64_t batch;
  double* w;              // (B, p)
  double* a;              // (B, k)
  const double* w_star;   // (B, p)
  const double* a_star;   // (B, k)
  const std::uint64_t* seeds;
  double* opt_state;      // (B, optimizer_state_size)
  TrialState* states;     // (B,)
  double* train_loss;     // (B,): the training loss of each trial's last evaluated step
};

// Rows (step, loss, phi, a_dot_astar, a_err, w_norm, train_loss) written into a caller's buffer.
struct RowBuffer {
  static constexpr bool active = true;
  static constexpr int kColumns = 7;
  double* rows;
  std::int64_t capacity, count;
  void operator()(std::int64_t step, const Observation& o, double train_loss) {
    double* r = rows + kColumns * count++;
    r[0] = static_cast<double>(step);
    r[1] = o.loss;
    r[2] = o.phi;
    r[3] = o.a_dot_astar;
    r[4] = o.a_err;
    r[5] = o.w_norm;
    r[6] = train_loss;
  }
};

struct NoRecord {
  static constexpr bool active = false;
  void operator()(std::int64_t, const Observation&, double) {}
};

// Doubles of scratch of advance: both gradients and observe's workspace.
inline std::int64_t advance_workspace_size(std::int64_t k, std::int64_t p) { return 4 * p + 2 * k; }

// The step loop of docs/training.md section 4 for trial b until it stops or has evaluated step
// last_step (inclusive); records every record_every steps and at the last one.  True once done.
template <class Source, class Recorder>
bool advance(const EngineConfig& cfg, const TrialArrays& trials, std::int64_t b, Source& source,
             std::int64_t last_step, std::int64_t record_every, double* work, Recorder& record) {
  const Architecture& arch = cfg.arch;
  const std::int64_t p = arch.p, k = arch.k;
  double* w = trials.w + b * p;
  double* a = trials.a + b * k;
  const double* w_star = trials.w_star + b * p;
  const double* a_star = trials.a_star + b * k;
  double* opt_state = trials.opt_state + b * optimizer_state_size(cfg.opt, k, p);
  TrialState& state = trials.states[b];
  double& train_loss = trials.train_loss[b];
  double* grad_w = work;
  double* grad_a = work + p;
  double* obs_work = work + p + k;
  const double divergence = cfg.th.divergence;
  while (!state.done && state.step <= last_step) {
    const std::int64_t t = state.step;
    double loss;
    train_loss = source.gradient(t, w, a, grad_w, grad_a, loss);
    const bool diverged = !(loss <= divergence);  // also catches NaN
    const bool converged = !diverged && loss <= cfg.tol;
    if (converged) state.steps_to_tol = t;
    if (diverged || converged || t == cfg.n_steps) {
      state.done = true;
      state.loss = loss;
    }
    if constexpr (Recorder::active) {
      if (state.done || t % record_every == 0)
        record(t, observe(arch, w, a, w_star, a_star, loss, obs_work), train_loss);
    }
    if (state.done) break;
    const std::int64_t row = std::min(t - cfg.rates_first, cfg.n_rates - 1);
    optimizer_step(cfg.opt, t, cfg.rates[2 * row], cfg.rates[2 * row + 1], grad_w, grad_a, w, a, k, p, opt_state);
    state.step = t + 1;
    // Parameters can run away while the loss stays bounded (the filter's scale is free in the
    // normalized model); stop there too rather than produce infinities.
    const double limit = divergence * divergence;
    if (!(dot(w, w, p) <= limit) || !(dot(a, a, k) <= limit)) {
      state.done = true;
      state.loss = source.loss(w, a);
      train_loss = std::numeric_limits<double>::quiet_NaN();
      if constexpr (Recorder::active) record(state.step, observe(arch, w, a, w_star, a_star, state.loss, obs_work), train_loss);
    }
  }
  return state.done;
}

class Runner {
 public:
  virtual ~Runner() = default;
  // One chunk of work; rows (one trial only) receives the trajectory.  True when every trial is done.
  virtual bool run_chunk(RowBuffer* rows, std::int64_t record_every) = 0;
  // The rates of the steps cfg.rates_first .. cfg.rates_last (engine.hpp, EngineConfig).
  virtual void set_rates(const EngineConfig& cfg) = 0;
};

// One trial at a time per thread, each thread with its own source and scratch.
template <class Source>
class SlotRunner : public Runner {
 public:
  SlotRunner(const EngineConfig& cfg, const TrialArrays& trials)
      : cfg_(cfg), trials_(trials),
        n_slots_(static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(cfg.threads, trials.batch)))) {
    SourceSpec spec = cfg.source;
    spec.inner_threads = n_slots_ == 1 ? cfg.threads : 1;
    for (int i = 0; i < n_slots_; ++i) slots_.emplace_back(new Slot(cfg.arch, spec));
  }

  bool run_chunk(RowBuffer* rows, std::int64_t record_every) override {
    if (n_slots_ == 1) {
      run_slot(*slots_[0], rows, record_every);
    } else {
#ifdef SHORTCUTNET_OPENMP
#pragma omp parallel num_threads(n_slots_)
      run_slot(*slots_[static_cast<std::size_t>(omp_get_thread_num())], nullptr, 0);
#endif
    }
    if (next_.load() < trials_.batch) return false;
    for (const auto& slot : slots_)
      if (slot->trial >= 0) return false;
    for (std::int64_t b = 0; b < trials_.batch; ++b)
      if (!trials_.states[b].done) return false;  // waiting at rates_last for more rates
    return true;
  }

  // Trials wait at rates_last without their slot; the new rows send every slot over the trials again.
  void set_rates(const EngineConfig& cfg) override {
    copy_rate_rows(cfg, cfg_);
    next_.store(0);
  }

 private:
  struct Slot {
    Slot(const Architecture& arch, const SourceSpec& spec)
        : source(arch, spec), work(static_cast<std::size_t>(advance_workspace_size(arch.k, arch.p))) {}
    Source source;
    std::vector<double> work;
    std::int64_t trial = -1;
    double step_ns = 0.0;  // measured wall time per step, 0 until the first call
  };

  // Work for about kChunkNs of wall time.  A slot's first call takes kProbeSteps steps at most and
  // times them; later calls size themselves by the measured time per step (the cost estimates of
  // gradient_sources.hpp only start it), so a chunk stays short however wrong an estimate is.
  void run_slot(Slot& slot, RowBuffer* rows, std::int64_t record_every) {
    const auto start = Clock::now();
    for (;;) {
      const double used = nanoseconds_since(start);
      if (used >= kChunkNs) return;
      if (slot.trial < 0) {
        const std::int64_t b = next_.fetch_add(1);
        if (b >= trials_.batch) return;
        if (trials_.states[b].done || trials_.states[b].step > cfg_.rates_last) continue;
        slot.trial = b;
        slot.source.start(TrialTeacher{trials_.w_star + b * cfg_.arch.p, trials_.a_star + b * cfg_.arch.k,
                                       trials_.seeds[b]});
        continue;  // the start may have used the chunk's time
      }
      const std::int64_t b = slot.trial;
      const std::int64_t first = trials_.states[b].step;
      const double step_ns = slot.step_ns > 0.0 ? slot.step_ns : slot.source.step_cost();
      std::int64_t steps = static_cast<std::int64_t>(std::max(1.0, std::min(1e15, (kChunkNs - used) / step_ns)));
      if (!(slot.step_ns > 0.0)) steps = std::min(steps, kProbeSteps);
      steps = std::min(steps, cfg_.rates_last + 1 - first);
      const auto before = Clock::now();
      bool done;
      if (rows != nullptr) {
        // At most (steps / record_every + 2) rows per call: keep within the buffer.
        const std::int64_t room = rows->capacity - rows->count - 3;
        if (room < 1) return;
        steps = std::min(steps, room * record_every);
        done = advance(cfg_, trials_, b, slot.source, first + steps - 1, record_every, slot.work.data(), *rows);
      } else {
        NoRecord none;
        done = advance(cfg_, trials_, b, slot.source, first + steps - 1, 1, slot.work.data(), none);
      }
      const double taken = static_cast<double>(std::max<std::int64_t>(1, trials_.states[b].step - first));
      slot.step_ns = std::max(1.0, nanoseconds_since(before) / taken);
      if (done || trials_.states[b].step > cfg_.rates_last) slot.trial = -1;
    }
  }

  EngineConfig cfg_;
  TrialArrays trials_;
  int n_slots_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::atomic<std::int64_t> next_{0};
};

// The lockstep lanes: every unfinished trial advances through the same last step per chunk.
class LaneBatchRunner : public Runner {
 public:
  LaneBatchRunner(const EngineConfig& cfg, const TrialArrays& trials) : cfg_(cfg), trials_(trials) {
    const double per_trial_step = population_step_cost(cfg.arch) / 2.0;  // lanes share the work
    chunk_steps_ = std::max<std::int64_t>(
        1, static_cast<std::int64_t>(kChunkNs * cfg.threads / (per_trial_step * static_cast<double>(trials.batch))));
  }

  // The first chunk is sized by the cost estimate, every later one by the measured time of the last.
  bool run_chunk(RowBuffer*, std::int64_t) override {
    const std::int64_t previous = last_step_;
    last_step_ = std::min(last_step_ + chunk_steps_, cfg_.rates_last);
    const auto start = Clock::now();
    const LaneArgs args{cfg_.arch.s, cfg_.arch.k, cfg_.arch.p, cfg_.arch.stride, cfg_.rates, cfg_.rates_first,
                        cfg_.n_rates, cfg_.n_steps, cfg_.tol, cfg_.th.divergence, cfg_.opt, cfg_.threads, trials_.batch,
                        last_step_, trials_.states, trials_.w, trials_.a, trials_.w_star, trials_.a_star,
                        trials_.opt_state};
    run_lane_groups(args);
    const double ns = nanoseconds_since(start);
    if (last_step_ > previous && ns > 0.0)
      chunk_steps_ = static_cast<std::int64_t>(
          std::max(1.0, std::min(1e15, kChunkNs * static_cast<double>(last_step_ - previous) / ns)));
    for (std::int64_t b = 0; b < trials_.batch; ++b)
      if (!trials_.states[b].done) return false;
    return true;
  }

  void set_rates(const EngineConfig& cfg) override {
    copy_rate_rows(cfg, cfg_);
  }

 private:
  EngineConfig cfg_;
  TrialArrays trials_;
  std::int64_t chunk_steps_ = 1, last_step_ = -1;
};

// The runner for a configuration: lanes where they apply (and no trajectory is wanted).
inline Runner* make_runner(const EngineConfig& cfg, const TrialArrays& trials, bool recording) {
  const bool lanes = cfg.source.kind == kPopulationSource && cfg.arch.normalize && cfg.arch.stride >= cfg.arch.p;
  if (lanes && !recording) return new LaneBatchRunner(cfg, trials);
  switch (cfg.source.kind) {
    case kSampledSource:
      if (cfg.source.single) return new SlotRunner<SampledSource<float>>(cfg, trials);
      return new SlotRunner<SampledSource<double>>(cfg, trials);
    case kEmpiricalSource:
      if (cfg.source.single) return new SlotRunner<EmpiricalSource<float>>(cfg, trials);
      return new SlotRunner<EmpiricalSource<double>>(cfg, trials);
    default:
      return new SlotRunner<PopulationSource>(cfg, trials);
  }
}

// Outcome, final angle and loss of every trial (the outcome rule of trials.hpp).
inline void classify_trials(const EngineConfig& cfg, const TrialArrays& trials, const EngineOutputs& out) {
  const std::int64_t p = cfg.arch.p, k = cfg.arch.k;
  std::vector<double> work(static_cast<std::size_t>(3 * p + k));
  for (std::int64_t b = 0; b < trials.batch; ++b) {
    const TrialState& st = trials.states[b];
    const double *w = trials.w + b * p, *a = trials.a + b * k;
    const double *ws = trials.w_star + b * p, *as = trials.a_star + b * k;
    const Observation obs = observe(cfg.arch, w, a, ws, as, st.loss, work.data());
    out.outcome[b] = classify(cfg.arch, w, a, ws, as, obs, cfg.th, work.data());
    out.phi[b] = obs.phi;
    out.loss[b] = st.loss;
    out.steps_to_tol[b] = st.steps_to_tol;
    out.steps[b] = st.step;
  }
}

// Rows of rates for the steps first .. first + n - 1 (window: more rows follow later, else the
// last repeats).  Trials may reach step rates_last: n_steps (which needs no rate) once the rows
// reach step n_steps - 1 or the last row repeats, else first + n - 1.
inline void set_rate_rows(EngineConfig& cfg, const double* rates, std::int64_t first, std::int64_t n, bool window) {
  cfg.rates = rates;
  cfg.rates_first = first;
  cfg.n_rates = n;
  cfg.rates_last = window && first + n < cfg.n_steps ? first + n - 1 : cfg.n_steps;
}

// The configuration every trial of a run shares, as EngineArgs gives it.
inline EngineConfig config_of(const EngineArgs& args) {
  EngineConfig cfg;
  cfg.arch = Architecture{args.s, args.k, args.p, args.stride, args.normalize};
  cfg.n_steps = args.n_steps;
  set_rate_rows(cfg, args.rates, args.rates_first, args.n_rates, args.rates_window);
  cfg.tol = args.tol;
  cfg.th = Thresholds{args.thresholds[0], args.thresholds[1], args.thresholds[2], args.thresholds[3],
                      args.thresholds[4]};
  cfg.opt = OptimizerSpec{args.optimizer, args.beta, args.nesterov, args.beta1, args.beta2, args.eps};
  cfg.source.kind = args.source;
  cfg.source.batch_size = args.batch_size;
  cfg.source.n_train = args.n_train;
  cfg.source.single = args.single;
  cfg.threads = std::max(1, args.threads);
  return cfg;
}

// What the entry points of engine_isa.inc call, for the full engine here and the reduced one
// (reduced_engine.hpp).
class EngineBase {
 public:
  virtual ~EngineBase() = default;
  // One chunk; rows (one trial only) receives the trajectory.  True when every trial is done.
  virtual bool run_chunk(RowBuffer* rows, std::int64_t record_every) = 0;
  virtual std::int64_t record_every() const = 0;
  // The first step of the rates a window must bring before any trial can go on, else -1.
  virtual std::int64_t rates_wanted() const = 0;
  // Rows for the steps first .. first + n - 1 (window: more follow), kept by the caller while it runs.
  virtual void set_rates(const double* rates, std::int64_t first, std::int64_t n, bool window) = 0;
  // Writes the outputs of every trial.
  virtual void finish() = 0;
};

// The full-dimensional engine behind the plain interface of engine_entry.hpp: owns the per-trial state.
class Engine : public EngineBase {
 public:
  explicit Engine(const EngineArgs& args)
      : cfg_(config_of(args)), states_(static_cast<std::size_t>(args.batch)),
        opt_state_(static_cast<std::size_t>(args.batch * optimizer_state_size(cfg_.opt, args.k, args.p))),
        record_every_(args.record_every), out_(args.out) {
    const std::int64_t size = optimizer_state_size(cfg_.opt, args.k, args.p);
    for (std::int64_t b = 0; b < args.batch; ++b) optimizer_init(cfg_.opt, args.k, args.p, opt_state_.data() + b * size);
    for (std::int64_t b = 0; b < args.batch; ++b) out_.train_loss[b] = std::numeric_limits<double>::quiet_NaN();
    trials_ = TrialArrays{args.batch, args.w, args.a, args.w_star, args.a_star, args.seeds, opt_state_.data(),
                          states_.data(), out_.train_loss};
    runner_.reset(make_runner(cfg_, trials_, args.record_every > 0));
  }

  bool run_chunk(RowBuffer* rows, std::int64_t record_every) override { return runner_->run_chunk(rows, record_every); }

  std::int64_t rates_wanted() const override {
    if (cfg_.rates_last >= cfg_.n_steps) return -1;
    for (const TrialState& st : states_)
      if (!st.done && st.step <= cfg_.rates_last) return -1;
    return cfg_.rates_last + 1;
  }

  void set_rates(const double* rates, std::int64_t first, std::int64_t n, bool window) override {
    set_rate_rows(cfg_, rates, first, n, window);
    runner_->set_rates(cfg_);
  }
  std::int64_t record_every() const override { return record_every_; }
  void finish() override { classify_trials(cfg_, trials_, out_); }

 private:
  EngineConfig cfg_;
  std::vector<TrialState> states_;
  std::vector<double> opt_state_;
  std::int64_t record_every_;
  EngineOutputs out_;
  TrialArrays trials_;
  std::unique_ptr<Runner> runner_;
};

}  // namespace SHORTCUTNET_ISA_NAMESPACE
}  // namespace shortcutnet
