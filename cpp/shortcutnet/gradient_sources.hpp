// The gradient sources of the training engine (docs/training.md section 2).  At step t of a trial a
// source gives the gradient the optimizer follows and the population loss L that decides when the
// run stops and how it ends:
//   PopulationSource      the closed-form population gradient (docs/model.md, "Closed forms under Gaussian input");
//   SampledSource<T>      online SGD: the fused kernel on batch_size fresh Gaussian rows drawn from
//                         step_seed(trial seed, t) (docs/model.md, "Losses on a finite batch");
//   EmpiricalSource<T>    a training set of n_train rows drawn once per trial from the trial's seed,
//                         full batch or mini-batches without replacement in epoch_order.
// The stochastic sources return the step's training loss and compute the population loss without
// its gradient.  Each source is per thread: start() binds it to a trial (allocating nothing once
// the first trial has sized it), gradient() computes a step.  Sums over samples are those of the
// sampled kernels (blocks of 256 rows in order), so a step equals the kernel call to the last bit.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "shortcutnet/population.hpp"
#include "shortcutnet/sampled.hpp"
#include "shortcutnet/seeds.hpp"
#include "shortcutnet/trials.hpp"

namespace shortcutnet {
namespace SHORTCUTNET_ISA_NAMESPACE {

enum SourceKind : int { kPopulationSource = 0, kSampledSource = 1, kEmpiricalSource = 2 };

struct SourceSpec {
  int kind = kPopulationSource;
  std::int64_t batch_size = 0;  // sampled: rows per step; empirical: rows per mini-batch, 0 = full batch
  std::int64_t n_train = 0;     // empirical: rows of the training set
  bool single = false;          // float32 batches (else float64)
  int inner_threads = 1;        // threads inside one step's sums (one trial at a time only)
};

// The teacher and the seed of the trial a source works on.
struct TrialTeacher {
  const double* w_star;
  const double* a_star;
  std::uint64_t seed;
};

// Estimated nanoseconds of work, used only to size the first chunk between interrupt checks (the
// runners then measure).
constexpr double kNsPerPopulationEntry = 2.0;  // per entry of w and a, per step
constexpr double kNsPerKappa = 40.0;           // one kappa or kappa' (an atan2 and a sqrt)
constexpr double kNsPerFusedEntry = 3.0;       // per input entry drawn and used
constexpr double kNsPerStoredEntry = 1.0;      // per input entry read from the training set

// The population gradient's cost per step.  Overlapping patches sum over the 2k - 1 shifts of the
// filter, each four pair terms of about p entries and a kappa (population.hpp, overlapping).
inline double population_step_cost(const Architecture& arch) {
  const double k = static_cast<double>(arch.k), p = static_cast<double>(arch.p);
  if (arch.stride >= arch.p) return kNsPerPopulationEntry * (k + p) + 20.0;
  return (2.0 * k - 1.0) * (kNsPerPopulationEntry * (3.0 * p + 1.5 * k) + 4.0 * kNsPerKappa) + 20.0;
}

class PopulationSource {
 public:
  PopulationSource(const Architecture& arch, const SourceSpec&)
      : arch_(arch), work_(static_cast<std::size_t>(population_workspace_size(arch.p))) {}

  void start(const TrialTeacher& teacher) { teacher_ = teacher; }

  // L and its gradient; the training loss is NaN (there is none).
  double gradient(std::int64_t, const double* w, const double* a, double* grad_w, double* grad_a, double& loss) {
    loss = population_loss_grad(arch_.s, w, a, teacher_.w_star, teacher_.a_star, arch_.k, arch_.p, arch_.stride,
                                arch_.normalize, grad_w, grad_a, work_.data());
    return std::numeric_limits<double>::quiet_NaN();
  }

  double loss(const double* w, const double* a) {
    return population_loss_grad(arch_.s, w, a, teacher_.w_star, teacher_.a_star, arch_.k, arch_.p, arch_.stride,
                                arch_.normalize, nullptr, nullptr, work_.data());
  }

  double start_cost() const { return 0.0; }
  double step_cost() const { return population_step_cost(arch_); }

 protected:
  Network network(const double* w, const double* a) const {
    return Network{arch_.s, w, a, arch_.k, arch_.p, arch_.stride, arch_.normalize};
  }

  Architecture arch_;
  TrialTeacher teacher_{nullptr, nullptr, 0};
  std::vector<double> work_;
};

// Online SGD: step t draws rows 0..batch_size-1 of step_seed(seed, t).
template <class T>
class SampledSource : public PopulationSource {
 public:
  SampledSource(const Architecture& arch, const SourceSpec& spec) : PopulationSource(arch, spec), spec_(spec) {
    size_serial(arch.k, arch.p, arch.stride, ws_);
  }

  void start(const TrialTeacher& teacher) {
    teacher_ = teacher;
    start_serial(network(teacher.w_star, teacher.a_star), ws_);
  }

  double gradient(std::int64_t t, const double* w, const double* a, double* grad_w, double* grad_a, double& loss) {
    loss = PopulationSource::loss(w, a);
    const std::uint64_t seed = step_seed(teacher_.seed, static_cast<std::uint64_t>(t));
    const Network net = network(w, a);
    if (spec_.inner_threads > 1 && team_size(spec_.inner_threads, spec_.batch_size, 8 * net.d()) > 1)
      return stochastic_loss_grad<T>(net, teacher_.w_star, teacher_.a_star, spec_.batch_size, seed,
                                     spec_.inner_threads, grad_w, grad_a);
    return stochastic_loss_grad_serial<T>(net, spec_.batch_size, seed, ws_, grad_w, grad_a);
  }

  double step_cost() const {
    return kNsPerFusedEntry * static_cast<double>(spec_.batch_size) * static_cast<double>(arch_.k * arch_.p) +
           PopulationSource::step_cost();
  }

 private:
  SourceSpec spec_;
  SerialWorkspace<T> ws_;
};

// A fixed training set: rows 0..n_train-1 of the trial's seed, labelled by the teacher in T.
template <class T>
class EmpiricalSource : public PopulationSource {
 public:
  // Sizes every buffer for the training set up front, so that nothing is allocated while trials run.
  EmpiricalSource(const Architecture& arch, const SourceSpec& spec)
      : PopulationSource(arch, spec), spec_(spec), d_((arch.k - 1) * arch.stride + arch.p),
        x_(static_cast<std::size_t>(spec.n_train * d_)), y_(static_cast<std::size_t>(spec.n_train)),
        order_(spec.batch_size > 0 ? static_cast<std::size_t>(spec.n_train) : 0) {
    keyed_.reserve(order_.size());
    size_serial(arch.k, arch.p, arch.stride, ws_);
  }

  void start(const TrialTeacher& teacher) {
    teacher_ = teacher;
    const Network teacher_net = network(teacher.w_star, teacher.a_star);
    start_serial(teacher_net, ws_);
    sample_inputs<T>(spec_.n_train, d_, teacher.seed, spec_.inner_threads, x_.data());
    for (std::int64_t i = 0; i < spec_.n_train; ++i)
      y_[static_cast<std::size_t>(i)] = static_cast<T>(forward(ws_.teacher, x_.data() + i * d_, ws_.scratch.h.data()));
    epoch_ = -1;
  }

  double gradient(std::int64_t t, const double* w, const double* a, double* grad_w, double* grad_a, double& loss) {
    loss = PopulationSource::loss(w, a);
    const Network net = network(w, a);
    const std::int64_t n = spec_.n_train, m = spec_.batch_size;
    if (m <= 0) {
      if (spec_.inner_threads > 1 && team_size(spec_.inner_threads, n, d_) > 1)
        return sampled_loss_grad<T>(net, x_.data(), y_.data(), n, spec_.inner_threads, grad_w, grad_a);
      return sampled_loss_grad_serial<T>(net, x_.data(), y_.data(), nullptr, n, ws_, grad_w, grad_a);
    }
    const std::int64_t per_epoch = (n + m - 1) / m;
    const std::int64_t epoch = t / per_epoch, j = t % per_epoch;
    if (epoch != epoch_) {
      epoch_order(teacher_.seed, static_cast<std::uint64_t>(epoch), n, order_.data(), keyed_);
      epoch_ = epoch;
    }
    const std::int64_t first = j * m;
    return sampled_loss_grad_serial<T>(net, x_.data(), y_.data(), order_.data() + first, std::min(m, n - first), ws_,
                                       grad_w, grad_a);
  }

  double start_cost() const {
    return kNsPerFusedEntry * static_cast<double>(spec_.n_train) * static_cast<double>(d_);
  }
  double step_cost() const {
    const std::int64_t rows = spec_.batch_size > 0 ? spec_.batch_size : spec_.n_train;
    return kNsPerStoredEntry * static_cast<double>(rows) * static_cast<double>(arch_.k * arch_.p) +
           PopulationSource::step_cost();
  }

 private:
  SourceSpec spec_;
  std::int64_t d_;
  std::vector<T> x_, y_;
  std::vector<std::int64_t> order_;
  std::vector<std::pair<std::uint64_t, std::int64_t>> keyed_;
  std::int64_t epoch_ = -1;
  SerialWorkspace<T> ws_;
};

}  // namespace SHORTCUTNET_ISA_NAMESPACE
}  // namespace shortcutnet
