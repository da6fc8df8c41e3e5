"""London robbery 2022: fit on months 1-6, score months 7-12; print the validation table.

    make validate-london   # holdout + rolling CV -> benchmarks/results/local/ (not tracked)
    .venv/bin/python -m benchmarks.validate_london --rolling   # also rolling-origin CV (slower)

The tracked benchmarks/results/validation_london.json is a reference copy: this script
never rewrites it (its default output is the ignored benchmarks/results/local/).

The data are read in place from ../shared/data/london (or $RTM_LONDON_DATA), never copied.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.paths import LONDON, RESULTS, ROOT

OUT = RESULTS / "local" / "validation_london.json"

#: Published / replica reference numbers on exactly this case (issue 5).
REFERENCE = {
    "RTMDx R replica": {"auc": 0.704, "capture@10%": 0.435},
    "prior KDE hot spots (reference)": {"auc": "0.72-0.73", "capture@10%": 0.49},
}
TARGETS = {"forecast": (0.75, 0.50)}


def print_table(rows: list[dict]) -> None:
    """Every surface at 1/5/10/20% of the area, AUC and PAI@10%."""
    header = (
        f"{'surface':<22}{'AUC':>7}{'cap@1%':>8}{'cap@5%':>8}{'cap@10%':>9}{'cap@20%':>9}"
        f"{'PAI@1%':>8}{'PAI@5%':>8}{'PAI@10%':>9}{'PAI@20%':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['model']:<22}{row['auc']:>7.3f}{row['capture@1%']:>8.3f}"
            f"{row['capture@5%']:>8.3f}{row['capture@10%']:>9.3f}{row['capture@20%']:>9.3f}"
            f"{row['pai@1%']:>8.2f}{row['pai@5%']:>8.2f}{row['pai@10%']:>9.2f}"
            f"{row['pai@20%']:>9.2f}"
        )


def print_lift(lift: dict) -> None:
    """The forecast's lift over the best baseline, with its bootstrap interval."""
    for key in ("auc", "capture@10%"):
        part = lift[key]
        print(
            f"lift in {key}: forecast {part['forecast']:.3f} - {part['best_baseline']} "
            f"{part['baseline']:.3f} = {part['lift']:+.3f} "
            f"(95% interval {part['ci95'][0]:+.3f} to {part['ci95'][1]:+.3f})"
        )
    print(f"interval: {lift['interval']}")


def print_rolling(cv: dict) -> None:
    """Per window: every surface's AUC and capture@10%; the forecast's lift per window."""
    print(f"\nRolling origin ({cv['scheme']}), {len(cv['windows'])} windows")
    names = list(cv["summary"])
    labels = [
        f"{w['train_periods'][0]}-{w['train_periods'][-1]}>{w['test_periods'][0]}-"
        f"{w['test_periods'][-1]}"
        for w in cv["windows"]
    ]
    print(f"{'surface':<22}" + "".join(f"{label:>18}" for label in labels) + f"{'mean':>18}")
    for surface in names:
        auc, cap = cv["summary"][surface]["auc"], cv["summary"][surface]["capture@10%"]
        cells = "".join(
            f"{a:>9.3f}{c:>9.3f}" for a, c in zip(auc["values"], cap["values"], strict=True)
        )
        print(f"{surface:<22}{cells}{auc['mean']:>9.3f}{cap['mean']:>9.3f}")
    print("(each cell: AUC, capture@10%)")
    for label, window in zip(labels, cv["windows"], strict=True):
        lift = window["validation"].get("lift")
        if lift:
            a, c = lift["auc"], lift["capture@10%"]
            print(
                f"window {label}: forecast {window['validation']['forecast']['recipe']['name']}; "
                f"lift AUC {a['lift']:+.3f} over {a['best_baseline']} "
                f"[{a['ci95'][0]:+.3f}, {a['ci95'][1]:+.3f}], capture@10% {c['lift']:+.3f} over "
                f"{c['best_baseline']} [{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}]"
            )
    lifts = [w["validation"]["lift"]["auc"]["lift"] for w in cv["windows"]]
    caps = [w["validation"]["lift"]["capture@10%"]["lift"] for w in cv["windows"]]
    print(
        f"rolling-origin lift: AUC mean {sum(lifts) / len(lifts):+.3f} "
        f"(min {min(lifts):+.3f}, max {max(lifts):+.3f}); capture@10% mean "
        f"{sum(caps) / len(caps):+.3f} (min {min(caps):+.3f}, max {max(caps):+.3f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rolling", action="store_true", help="also run rolling-origin CV")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not (LONDON / "study_area.shp").exists():
        print(f"London data not found at {LONDON}", file=sys.stderr)
        return 2

    from rtm.periods import event_periods
    from rtm.study import build_study_candidates, load_study
    from rtm.validation import FittedSurface, TestEvents, temporal_validation, validate

    common = dict(
        area=LONDON / "study_area.shp",
        block_length=200.0,
        cell_size=100.0,
        factors_dir=LONDON / "factors",
        where=["type=robbery"],
    )
    start = time.perf_counter()
    study = load_study(events=LONDON / "crimes_2022.csv.gz", **common)
    candidates = build_study_candidates(study)
    month = event_periods(study.events, "month")
    train, test = month <= 6, month >= 7
    area = study.area_geometry
    train_counts = study.grid.count_events(study.events.loc[train], area).counts
    test_counts = study.grid.count_events(study.events.loc[test], area).counts
    assert study.spec is not None
    from rtm.model import RiskTerrainModel

    result = RiskTerrainModel.from_spec(study.spec).fit(candidates, train_counts).result_
    fitted = time.perf_counter()
    validation = validate(
        FittedSurface.from_analysis(result, study, period_column="month", events=train),
        TestEvents.from_counts(test_counts, source="months 7-12"),
    )
    done = time.perf_counter()

    rows = validation.table()
    print(
        f"London robbery 2022, {study.grid.n_active:,} cells of 100 m, "
        f"{len(candidates.candidates)} candidates; fit months 1-6 "
        f"({int(train_counts.sum()):,} events), test months 7-12 ({int(test_counts.sum()):,})"
    )
    print(f"RTM factors: {', '.join(f.candidate for f in result.factors)}")
    print_table(rows)
    choice = validation.report["model_choice"]
    print(f"inner choice: {choice['chosen']} (KDE radius {choice['kde_radius']}); splits:")
    for label in choice["splits"]:
        print(f"  {label}")
    print(f"rule: {choice['rule']}")
    print_lift(validation.report["lift"])
    for name, ref in REFERENCE.items():
        print(f"{name:<32} AUC {ref['auc']}, capture@10% {ref['capture@10%']}")
    logistic = validation.report["logistic"]
    if logistic and "odds_ratio" in logistic:
        print(
            f"odds ratio per additional risk factor: {logistic['odds_ratio']:.3f} "
            f"(95% CI {logistic['ci95'][0]:.3f}-{logistic['ci95'][1]:.3f})"
        )
    print(f"fit {fitted - start:.1f} s, validation {done - fitted:.1f} s")

    output = {
        "case": "London robbery 2022; fit months 1-6, test months 7-12; 100 m cells; block 200 m",
        "rtm_factors": [f.candidate for f in result.factors],
        "table": rows,
        "reference": REFERENCE,
        "targets": {k: {"auc": v[0], "capture@10%": v[1]} for k, v in TARGETS.items()},
        "validation": validation.report,
    }
    if args.rolling:
        cv = temporal_validation(
            events=LONDON / "crimes_2022.csv.gz", period_column="month", train=6, test=3, **common
        )
        output["rolling"] = {
            "scheme": cv["scheme"],
            "summary": cv["summary"],
            "windows": [
                {k: w[k] for k in ("train_periods", "test_periods", "factors")}
                for w in cv["windows"]
            ],
        }
        print_rolling(cv)
    from rtm.runs import write_json

    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, output)
    print(f"written: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
