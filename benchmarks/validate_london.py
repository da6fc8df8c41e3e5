"""London robbery 2022: fit on months 1-6, score months 7-12; print the validation table.

    make validate-london   # holdout + rolling CV -> benchmarks/results/validation_london.json
    .venv/bin/python -m benchmarks.validate_london --rolling   # also rolling-origin CV (slower)

The data are read in place from ../shared/data/london (or $RTM_LONDON_DATA), never copied.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.paths import LONDON, RESULTS, ROOT

OUT = RESULTS / "validation_london.json"

#: Published / replica reference numbers on exactly this case (issue 5).
REFERENCE = {
    "RTMDx R replica": {"auc": 0.704, "capture@10%": 0.435},
    "prior KDE hot spots (reference)": {"auc": "0.72-0.73", "capture@10%": 0.49},
}
TARGETS = {"rtm": (0.72, 0.45), "best model": (0.76, 0.52)}


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
    header = (
        f"{'surface':<16}{'AUC':>7}{'cap@1%':>8}{'cap@5%':>8}{'cap@10%':>9}{'cap@20%':>9}"
        f"{'PAI@10%':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['model']:<16}{row['auc']:>7.3f}{row['capture@1%']:>8.3f}{row['capture@5%']:>8.3f}"
            f"{row['capture@10%']:>9.3f}{row['capture@20%']:>9.3f}{row['pai@10%']:>9.2f}"
        )
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
        print(f"\nRolling origin ({cv['scheme']}): mean (SD) over {len(cv['windows'])} windows")
        for surface, metrics in cv["summary"].items():
            auc, cap = metrics["auc"], metrics["capture@10%"]
            print(
                f"{surface:<16} AUC {auc['mean']:.3f} ({auc['sd'] or 0:.3f})  "
                f"capture@10% {cap['mean']:.3f} ({cap['sd'] or 0:.3f})"
            )
    from rtm.runs import write_json

    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, output)
    print(f"written: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
