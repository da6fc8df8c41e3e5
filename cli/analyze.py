"""``rtm analyze``: fit a risk terrain model and write the run folder."""

from __future__ import annotations

import click
from rtm_cli._options import (
    Progress,
    echo,
    event_options,
    frozen_imports,
    network_option,
    output_options,
    study_options,
)
from rtm_cli.map import PLACE_KEYS, output_options_from, place_options


@click.command()
@click.argument("crimes", metavar="CRIMES")
@study_options
@network_option
@event_options
@output_options
@click.option(
    "--out",
    required=True,
    metavar="DIR",
    help="Run folder to write (report.json, factors.csv, risk.tif, cells.gpkg).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**32 - 1),
    default=0,
    show_default=True,
    help="Seed of the cross-validation folds (same inputs + seed = same model).",
)
@click.option(
    "--nb-form",
    type=click.Choice(["nbii", "nb2"]),
    default="nbii",
    show_default=True,
    help="Negative binomial compared with Poisson: RTMDx's NBII (var = mu(1+sigma)) or NB2 (var = mu + mu^2/theta).",
)
@click.option(
    "--cv-rule",
    type=click.Choice(["min", "1se"]),
    default="min",
    show_default=True,
    help="Culling penalty: lambda.min or the one-standard-error rule.",
)
@click.option(
    "--l1-ratio",
    "l1_ratios",
    type=float,
    multiple=True,
    metavar="R",
    help="Elastic-net mixing tried in culling (repeatable; default 0.8 and 0.95).",
)
@click.option(
    "--alpha",
    type=float,
    default=0.05,
    show_default=True,
    help="Significance level of selected factors.",
)
@click.option(
    "--test-crimes",
    "test_events",
    metavar="FILE",
    help="Later events to validate on: writes validation.json and capture.png (RTM, risk + exposure, random forest, prior-period baselines).",
)
@click.option(
    "--test-where",
    multiple=True,
    metavar="COL=V1,V2|COL=LO..HI",
    help="Filter the --test-crimes events (as --where); repeatable.",
)
@click.option(
    "--period-column",
    metavar="COL",
    help="Column of the events' month or date, for the challengers' lagged design in --test-crimes (default: a 'month' or 'date' column if there is one).",
)
@click.option(
    "--bootstrap",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="B",
    help="Rerun the selection on B bootstrap resamples: how often each factor is chosen, bagged RRVs with intervals (report.json: stability).",
)
@click.option(
    "--bootstrap-scheme",
    type=click.Choice(["block", "cells"]),
    default="block",
    show_default=True,
    help="Resample square blocks of cells (spatial block bootstrap) or single cells.",
)
@click.option(
    "--weight-column",
    metavar="COL",
    help="Weight each event by this numeric column (harm, e.g. a crime harm index): the outcome per cell is its total harm in event-equivalents, fitted quasi-Poisson (report.json: model.outcome, model.dispersion_quasi).",
)
@click.option(
    "--split-sample",
    is_flag=True,
    help="Also select on half the cells (spatial blocks) and refit on the other half: valid p-values (report.json: split_sample).",
)
@place_options
def analyze(
    crimes: str,
    out: str,
    seed: int,
    nb_form: str,
    cv_rule: str,
    l1_ratios: tuple[float, ...],
    alpha: float,
    overwrite: bool,
    quiet: bool,
    verbose: bool,
    **options: object,
) -> None:
    """Fit a risk terrain model to CRIMES and write the model table and risk map.

    \b
    Example:
      rtm analyze crimes.csv --area area.gpkg --factors-dir factors/ \\
          --block-length 150 --where type=robbery --out run/

    Exits with 3 when no factor is significant (the report says so; no risk map).
    """
    from rtm.api import analyze as run_analysis
    from rtm.errors import NoSignificantFactorError
    from rtm.model import RiskTerrainModel

    progress = Progress(quiet=quiet, verbose=verbose)
    model = RiskTerrainModel(
        seed=seed,
        nb_form=nb_form,  # type: ignore[arg-type]
        cv_rule=cv_rule,  # type: ignore[arg-type]
        alpha=alpha,
        l1_ratios=l1_ratios or (0.8, 0.95),
    )
    outputs = output_options_from(**{key: options.pop(key) for key in PLACE_KEYS})
    with frozen_imports():
        result = run_analysis(
            events=crimes,
            out=out,
            model=model,
            outputs=outputs,
            overwrite=overwrite,
            progress=progress,
            **options,  # type: ignore[arg-type]
        )
    if not quiet:
        echo(result.summary())
        if verbose:
            timing = ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items())
            echo(f"timings: {timing}", err=True)
        echo(
            f"Outputs: {out}/report.json, factors.csv, cells.gpkg"
            + (
                ", risk.tif, map.html, report.html, risk.png, places.gpkg"
                if result.significant
                else ""
            )
        )
    if not result.significant:
        raise NoSignificantFactorError(f"no risk factor is significant; see {out}/report.json")
