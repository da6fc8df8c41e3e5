"""Randomised trials with a planted truth: interval coverage, size and power agreement.

    python -m benchmarks.trial_coverage              # 400 trials per check (a few minutes)
    python -m benchmarks.trial_coverage --trials 100 # quicker, noisier

For many seeded synthetic worlds (40 places, gamma rates, six months of NB history,
blocks of 4; ``rtm.trial.synthetic``) it runs the evaluation's estimator
(``rtm.trial.models.parallel_estimate``: NB2, block fixed effects, log(1 + baseline), HC3
standard error, t reference) on

* trials with a planted 30% reduction: how often the 95% interval holds IRR 0.7;
* trials without an effect: how often the test rejects at 5%;
* and compares, world by world, the power the simulation of ``rtm trial power``
  predicts from the world's history with the rejection rate of the evaluation on trials
  drawn from the world's truth.

Results go to benchmarks/results/trial_coverage.json.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks.paths import RESULTS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400, help="trials per check")
    parser.add_argument("--worlds", type=int, default=8, help="worlds for the power check")
    parser.add_argument("--places", type=int, default=40)
    args = parser.parse_args()

    from rtm.trial.models import parallel_estimate
    from rtm.trial.power import history_dispersion, simulate_power
    from rtm.trial.synthetic import planted_world

    started = time.perf_counter()
    covered = rejected_null = 0
    estimates = []
    per_world = max(args.trials // 20, 1)
    for trial in range(args.trials):
        world = planted_world(args.places, seed=10_000 + trial // per_world)
        rng = np.random.default_rng(trial)
        treated, y = world.trial(trial, 0.7, rng)
        estimate = parallel_estimate(y, treated, world.blocks, world.baseline)
        low, high = estimate.ci()
        covered += low <= 0.7 <= high
        estimates.append(estimate.log_irr)
        treated, y0 = world.trial(trial, 1.0, rng)
        rejected_null += parallel_estimate(y0, treated, world.blocks, world.baseline).p_value < 0.05
    coverage = covered / args.trials
    size = rejected_null / args.trials
    print(f"planted IRR 0.7: 95% interval coverage {coverage:.3f} "
          f"(+/- {1.96 * np.sqrt(0.95 * 0.05 / args.trials):.3f}), "
          f"mean IRR {np.exp(np.mean(estimates)):.3f}")  # fmt: skip
    print(
        f"no effect: rejection at 5% {size:.3f} "
        f"(+/- {1.96 * np.sqrt(0.05 * 0.95 / args.trials):.3f})"
    )

    rows = []
    for index in range(args.worlds):
        world = planted_world(args.places, mean=12.0, seed=20_000 + index)
        history = history_dispersion(world.panel())
        sims = max(args.trials // 2, 50)
        predicted = simulate_power(
            history, world.blocks, trial_periods=6, irr=0.7, sims=sims, seed=index
        )
        rng = np.random.default_rng(index)
        rejections = 0
        for trial in range(sims):
            treated, y = world.trial(50_000 + trial, 0.7, rng)
            rejections += parallel_estimate(y, treated, world.blocks, world.baseline).p_value < 0.05
        rows.append({"world": index, "predicted": predicted.power, "observed": rejections / sims})
        print(
            f"world {index}: power predicted {predicted.power:.3f}, "
            f"observed {rejections / sims:.3f}"
        )
    predicted_mean = float(np.mean([r["predicted"] for r in rows]))
    observed_mean = float(np.mean([r["observed"] for r in rows]))
    print(f"mean over worlds: predicted {predicted_mean:.3f}, observed {observed_mean:.3f}")
    seconds = time.perf_counter() - started
    print(f"{seconds:.0f} s")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "trial_coverage.json").write_text(
        json.dumps(
            {
                "trials": args.trials,
                "places": args.places,
                "coverage_planted_0.7": coverage,
                "rejection_no_effect": size,
                "mean_irr_planted_0.7": float(np.exp(np.mean(estimates))),
                "power_by_world": rows,
                "power_predicted_mean": predicted_mean,
                "power_observed_mean": observed_mean,
                "seconds": round(seconds, 1),
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
