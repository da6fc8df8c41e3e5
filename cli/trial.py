"""``rtm trial``: design, power, dosage and evaluation of randomised patrol trials."""

from __future__ import annotations

import click
from rtm_cli._options import Progress, echo, output_options


@click.group()
def trial() -> None:
    """Randomised patrol experiments at hot spots, from design to evaluation.

    \b
    Example:
      rtm analyze crimes.csv --where month=1..6 ... --out run/
      rtm trial design run/ --places 40 --seed 2024 --out design/
      rtm trial power design/ --days 182 --out power/
      rtm trial dosage design/ --pings gps.csv --out dosage/
      rtm trial evaluate design/ --events crimes.csv --where type=robbery \\
          --where month=7..12 --dosage dosage/ --out evaluation/
    """


def _floats(text: str, option: str) -> tuple[float, ...]:
    from rtm.errors import ParameterError

    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ParameterError(
            f"{option} {text!r}: give distances in metres separated by commas, e.g. 50,100,150"
        ) from None


@trial.command()
@click.argument("run_dir", metavar="RUN_DIR", required=False)
@click.option(
    "--places", "n_places", type=int, default=40, show_default=True, help="Places to randomise."
)
@click.option("--out", required=True, metavar="DIR", help="Design folder to write.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the allocation.")
@click.option(
    "--scheme",
    type=click.Choice(["parallel", "crossover"]),
    default="parallel",
    show_default=True,
    help="Each place keeps its arm (parallel) or a fresh allocation every day (crossover).",
)
@click.option("--days", type=int, default=0, help="Crossover: days of the schedule.")
@click.option(
    "--start-date", metavar="YYYY-MM-DD", help="Crossover: the first day of the schedule."
)
@click.option(
    "--block-size", type=int, default=4, show_default=True, help="Places per block (half treated)."
)
@click.option(
    "--block-by",
    type=click.Choice(["events", "harm"]),
    default="events",
    show_default=True,
    help="Rank places into blocks by baseline events or harm.",
)
@click.option(
    "--stratify-column",
    metavar="COL",
    help="Form blocks within each value of this place column (borough, ward).",
)
@click.option(
    "--rings",
    default="50,100,150",
    show_default=True,
    metavar="M,M,...",
    help="Catchment rings for displacement, metres.",
)
@click.option(
    "--min-spacing",
    type=float,
    help="Minimum distance between places, metres (default: twice the widest ring).",
)
@click.option(
    "--place-radius",
    type=float,
    default=50.0,
    show_default=True,
    help="Radius of point places, metres.",
)
@click.option(
    "--place-layer",
    metavar="FILE[:LAYER]",
    help="Places to use instead of the run's (polygons or points).",
)
@click.option(
    "--events",
    "events_file",
    metavar="FILE",
    help="History events instead of the run's events file.",
)
@click.option(
    "--where",
    multiple=True,
    metavar="COL=V1,V2|COL=LO..HI",
    help="Filters of --events (default: the run's).",
)
@click.option(
    "--harm-column", metavar="COL", help="Numeric harm weight per event (e.g. a crime harm index)."
)
@click.option(
    "--baseline-days",
    type=float,
    help="Days of history (default: from the events' dates or months).",
)
@output_options
def design(
    run_dir: str | None,
    n_places: int,
    out: str,
    seed: int,
    scheme: str,
    days: int,
    start_date: str | None,
    block_size: int,
    block_by: str,
    stratify_column: str | None,
    rings: str,
    min_spacing: float | None,
    place_radius: float,
    place_layer: str | None,
    events_file: str | None,
    where: tuple[str, ...],
    harm_column: str | None,
    baseline_days: float | None,
    overwrite: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Design a trial from the places of RUN_DIR: blocks, allocation, catchments, plan.

    Reads the run's places.gpkg layer patrol_places (else places), or --place-layer
    (then RUN_DIR may be left out, with --events), counts the run's events
    in each place as its baseline, takes the --places busiest places at least
    --min-spacing apart, forms blocks and randomises half of each block to treatment.
    Writes allocation.csv, allocation.gpkg (places, catchments), baseline_periods.csv,
    design.json (with SHA-256 digests) and preregistration.md.
    """
    from dataclasses import replace

    from rtm.trial import DesignSettings, EventSource, design_trial
    from rtm.trial.design import _source_from_run

    progress = Progress(quiet=quiet, verbose=verbose)
    settings = DesignSettings(
        places=n_places, seed=seed, scheme=scheme, block_size=block_size, block_by=block_by,
        stratify_column=stratify_column, rings=_floats(rings, "--rings"), min_spacing=min_spacing,
        place_radius=place_radius, crossover_days=days, start_date=start_date, baseline_days=baseline_days,
    )  # fmt: skip
    source = None
    if events_file or where or harm_column:
        from pathlib import Path

        base = (
            EventSource(file=events_file)
            if events_file
            else _source_from_run(Path(run_dir or "."), None)[0]
        )
        source = replace(base, file=events_file or base.file, where=tuple(where) or base.where,
                         harm_column=harm_column or base.harm_column)  # fmt: skip
    progress("designing the trial")
    result = design_trial(
        run_dir, out, settings, events=source, place_layer=place_layer, overwrite=overwrite
    )
    consort = result.record["consort"]
    echo(f"{consort['randomised']} places ({consort['treatment']} treatment, {consort['control']} control) "
         f"in {result.allocation['block'].nunique()} blocks; allocation sha256 {result.record['sha256']['allocation'][:16]}...")  # fmt: skip
    echo(f"design written to {out}")


@trial.command()
@click.argument("design_dir", metavar="DESIGN_DIR")
@click.option("--days", type=float, required=True, help="Duration of the trial, days.")
@click.option(
    "--effect",
    type=float,
    help="Incidence-rate ratio to detect (0.7 = a 30% reduction); "
    "without it, the minimum detectable effect.",
)
@click.option(
    "--alpha", type=float, default=0.05, show_default=True, help="Significance level (two-sided)."
)
@click.option(
    "--target-power",
    type=float,
    default=0.8,
    show_default=True,
    help="Power the minimum detectable effect must reach.",
)
@click.option(
    "--sims", type=int, default=500, show_default=True, help="Simulated trials per effect."
)
@click.option(
    "--outcome",
    type=click.Choice(["counts", "harm"]),
    default="counts",
    show_default=True,
    help="Crimes, or harm (needs a design with --harm-column).",
)
@click.option(
    "--scheme", type=click.Choice(["parallel", "crossover"]), help="Default: the design's."
)
@click.option("--places", "n_places", type=int, help="Number of places (default: the design's).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulation.")
@click.option("--out", required=True, metavar="DIR", help="Folder for power.json.")
@output_options
def power(
    design_dir: str,
    days: float,
    effect: float | None,
    alpha: float,
    target_power: float,
    sims: int,
    outcome: str,
    scheme: str | None,
    n_places: int | None,
    seed: int,
    out: str,
    overwrite: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Power of a trial, or its minimum detectable effect, by simulation.

    Simulates trials from the places' own baseline counts (negative binomial, the
    over-dispersion estimated from their monthly history), re-drawing the allocation with
    the design's scheme, and runs the evaluation's own test on each.
    """
    from rtm.trial import trial_power

    Progress(quiet=quiet, verbose=verbose)("simulating trials")
    record = trial_power(design_dir, out, days=days, irr=effect, level=alpha, target=target_power, sims=sims,
                         outcome=outcome, scheme=scheme, places=n_places, seed=seed, overwrite=overwrite)  # fmt: skip
    result = record["power"]
    if effect is None:
        reached = (
            ""
            if record["reached_target"]
            else f" (not reached: {result['power']:.2f} at a 90% reduction)"
        )
        echo(f"minimum detectable effect: IRR {record['mde_irr']:.3f} ({record['mde_reduction']:.0%} reduction) "
             f"at power {target_power:.0%}{reached}")  # fmt: skip
    else:
        echo(
            f"power for IRR {effect:g}: {result['power']:.3f} (+/- {result['mc_se']:.3f}, {sims} simulated trials)"
        )
    echo(
        f"{record['places']} places, {days:g} days, NB dispersion {record['nb_dispersion']:.3f}; written to {out}"
    )


@trial.command()
@click.argument("design_dir", metavar="DESIGN_DIR")
@click.option(
    "--pings", required=True, metavar="FILE", help="GPS pings CSV: time, lon/lat, unit id."
)
@click.option("--out", required=True, metavar="DIR", help="Dosage folder to write.")
@click.option("--time-column", default="time", show_default=True, help="Column of the ping time.")
@click.option("--x-column", default="lon", show_default=True, help="Column of the longitude (x).")
@click.option("--y-column", default="lat", show_default=True, help="Column of the latitude (y).")
@click.option("--unit-column", default="unit", show_default=True, help="Column of the unit id.")
@click.option(
    "--pings-crs", default="EPSG:4326", show_default=True, help="CRS of the ping coordinates."
)
@click.option(
    "--max-gap",
    type=float,
    default=5.0,
    show_default=True,
    help="Longest time credited to one ping, minutes.",
)
@click.option(
    "--buffer",
    type=float,
    default=0.0,
    show_default=True,
    help="Widen each geofence by this many metres.",
)
@output_options
def dosage(
    design_dir: str,
    pings: str,
    out: str,
    time_column: str,
    x_column: str,
    y_column: str,
    unit_column: str,
    pings_crs: str,
    max_gap: float,
    buffer: float,
    overwrite: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Patrol minutes and visits per place per day from GPS pings; compliance per arm."""
    from rtm.trial import trial_dosage

    Progress(quiet=quiet, verbose=verbose)("reading pings")
    record = trial_dosage(design_dir, pings, out, time_column=time_column, x_column=x_column, y_column=y_column,
                          unit_column=unit_column, pings_crs=pings_crs, max_gap=max_gap, buffer=buffer,
                          overwrite=overwrite)  # fmt: skip
    echo(f"{record['pings']:,} pings, {record['pings_in_geofences']:,} in geofences, {record['days']} days "
         f"({record['seconds']:.1f} s)")  # fmt: skip
    for arm, row in sorted(record["compliance"].items(), reverse=True):
        echo(f"  {arm:<10} {row['minutes_per_place_day']:7.1f} min per place-day, "
             f"{row['share_of_place_days_visited']:.0%} of place-days visited")  # fmt: skip
    echo(f"dosage written to {out}")


@trial.command()
@click.argument("design_dir", metavar="DESIGN_DIR")
@click.option("--events", required=True, metavar="FILE", help="Events of the trial period.")
@click.option(
    "--where",
    multiple=True,
    metavar="COL=V1,V2|COL=LO..HI",
    help="Filters of the events (default: the design's); repeatable.",
)
@click.option("--days", type=float, help="Duration of the trial, days (default: from the events).")
@click.option(
    "--dosage",
    "dosage_dir",
    metavar="DIR",
    help="An rtm trial dosage folder: adds the dose-response.",
)
@click.option(
    "--permutations",
    type=int,
    default=500,
    show_default=True,
    help="Re-drawn allocations for randomisation inference.",
)
@click.option("--out", required=True, metavar="DIR", help="Evaluation folder to write.")
@output_options
def evaluate(
    design_dir: str,
    events: str,
    where: tuple[str, ...],
    days: float | None,
    dosage_dir: str | None,
    permutations: int,
    out: str,
    overwrite: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Intention-to-treat effect, randomisation inference, harm, displacement, report."""
    from rtm.trial import evaluate_trial

    Progress(quiet=quiet, verbose=verbose)("evaluating the trial")
    result = evaluate_trial(design_dir, events, out, where=tuple(where) or None, days=days, dosage_dir=dosage_dir,
                            permutations=permutations, overwrite=overwrite)  # fmt: skip
    echo(result["summary"])
    echo(f"evaluation written to {out} (evaluation.json, evaluation.html)")
