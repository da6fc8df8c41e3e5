"""``rtm validate`` and ``rtm validate-temporal``: predictive quality against later events."""

from __future__ import annotations

from pathlib import Path

import click
from rtm_cli._options import Progress, echo, output_options, spec_options, spec_values

#: Options of rtm analyze that validate-temporal does not take, and why.
TEMPORAL_EXCLUDES = (
    "test_events",  # each window's test events are the next periods of the same events
    "test_where",
    "bootstrap",  # honest inference of one fit; a window's fit is scored instead
    "bootstrap_scheme",
    "split_sample",
)


def _print_table(rows: list[dict[str, object]]) -> None:
    from rtm_cli._tables import validation_lines

    for line in validation_lines(rows):
        echo(line)


def _print_patrol(report: dict[str, object]) -> None:
    """Test events (and harm) per hectare of the top patrol places and KDE spots."""
    scored = report.get("patrol_places")
    if not isinstance(scored, dict):
        return
    for item in scored.get("top", []):
        parts = []
        for side, label in (("rtm", "patrol places"), ("prior_kde", "KDE spots")):
            if side in item:
                got = item[side]
                text = f"{label} {got['events_per_ha']:.1f} events/ha ({got['event_share']:.1%})"
                if "harm_per_ha" in got:
                    text += f", harm {got['harm_per_ha']:.0f}/ha ({got['harm_share']:.1%})"
                parts.append(text)
        echo(f"top {item['places']}: " + "; ".join(parts))


@click.command()
@click.argument("run_dir", metavar="RUN_DIR")
@click.argument("test_crimes", metavar="TEST_CRIMES")
@click.option(
    "--where",
    multiple=True,
    metavar="COL=V1,V2|COL=LO..HI",
    help="Filter the test events (as rtm analyze --where); repeatable.",
)
@spec_options(only=("x_column", "y_column", "events_crs", "bandwidth", "challengers", "importance"))
@click.option(
    "--out",
    metavar="FILE",
    help="validation.json to write (default RUN_DIR/validation.json); "
    "the capture-curve PNG goes beside it.",
)
@output_options
def validate(
    run_dir: str,
    test_crimes: str,
    where: tuple[str, ...],
    out: str | None,
    overwrite: bool,
    quiet: bool,
    verbose: bool,
    **options: object,
) -> None:
    """Score the risk map of RUN_DIR against later events in TEST_CRIMES.

    Reports capture rate, PAI, PEI and RRI at 1, 5, 10 and 20% of the area, the AUC,
    the odds ratio per additional risk factor, and the same metrics for the challengers
    (risk + exposure, random forest: their layers are rebuilt from the run's inputs) and
    the prior-period hot spots (kernel density) and counts, on the same cells. Tied risk
    scores share their events pro rata (never ordered by grid position).

    \b
    Example:
      rtm analyze crimes.csv --where month=1..6 ... --out run/
      rtm validate run/ crimes.csv --where month=7..12
    """
    from rtm.export.atomic import check_writable
    from rtm.export.plots import capture_plot
    from rtm.spec import check_option
    from rtm.validation import validate_run

    values = {k: check_option(k, v) for k, v in spec_values(options).items()}
    progress = Progress(quiet=quiet, verbose=verbose)
    target = Path(out) if out else Path(run_dir) / "validation.json"
    plot = capture_plot(target)
    if Path(run_dir).is_dir():  # a bad output fails before the slow work
        for path in (target, plot):
            check_writable(path, overwrite=overwrite, folder=False)
    validation = validate_run(run_dir, test_crimes, where=where, progress=progress, **values)
    validation.write(target, plot=plot, overwrite=overwrite)
    if not quiet:
        echo(f"{validation.report['events']:,} test events on {validation.report['cells']:,} cells")
        _print_table(validation.table())
        _print_patrol(validation.report)
        echo(f"Outputs: {target}, {plot}")


@click.command("validate-temporal")
@click.argument("crimes", metavar="CRIMES")
@spec_options(
    "inputs",
    "events",
    "grid",
    "model",
    "inference",
    "validation",
    exclude=TEMPORAL_EXCLUDES,
    required=("area", "block_length"),
)
@output_options
@click.option(
    "--train",
    "train_periods",
    type=int,
    default=6,
    show_default=True,
    help="Periods per training window.",
)
@click.option(
    "--test",
    "test_periods",
    type=int,
    default=3,
    show_default=True,
    help="Periods per test window.",
)
@click.option("--step", type=int, help="Periods the origin moves each time (default: --test).")
@click.option("--out", required=True, metavar="FILE", help="JSON file to write.")
def validate_temporal(
    crimes: str,
    train_periods: int,
    test_periods: int,
    step: int | None,
    out: str,
    overwrite: bool,
    quiet: bool,
    verbose: bool,
    **options: object,
) -> None:
    """Rolling-origin validation: fit on one window of periods, score the next.

    With --train 6 --test 3 on months 1-12: fit 1-6, test 7-9; fit 4-9, test 10-12.
    Reports each window and the mean and SD of every metric, for RTM, the challengers
    (risk + exposure, random forest) and the baselines. The periods are the
    --period-column (default: month).
    """
    from rtm import __version__
    from rtm.export.atomic import claim
    from rtm.runs import write_json
    from rtm.spec import StudySpec
    from rtm.validation import temporal_validation

    spec = StudySpec(events=crimes, **spec_values(options))
    progress = Progress(quiet=quiet, verbose=verbose)
    with claim(out, overwrite=overwrite, folder=False) as held:  # checked and locked first
        result = temporal_validation(
            spec, train=train_periods, test=test_periods, step=step, progress=progress
        )
        with held.staging() as tmp:
            write_json(tmp, {"written_by": f"rtm {__version__}", **result})
    if not quiet:
        echo(f"{result['scheme']}; {len(result['windows'])} windows. Mean (SD):")
        for surface, metrics in result["summary"].items():
            auc, cap = metrics["auc"], metrics["capture@10%"]
            echo(
                f"  {surface:<15} AUC {auc['mean']:.3f} ({auc['sd'] or 0:.3f})  "
                f"capture@10% {cap['mean']:.3f} ({cap['sd'] or 0:.3f})"
            )
        echo(f"Output: {out}")
