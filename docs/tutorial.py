# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Tutorial: a risk terrain model in a notebook
#
# This tutorial fits a risk terrain model to the synthetic sample city shipped in `sample_data/`:
# robberies planted near bars, bus stops and main roads, and fewer near parks
# (`sample_data/truth.json` says exactly how). Step by step, it
#
# 1. loads the study area, the events and the risk-factor layers,
# 2. turns the factors into candidate proximity and density layers,
# 3. fits the model (culling, then stepwise BIC),
# 4. reads the model table,
# 5. draws the risk map and opens the interactive map,
# 6. checks the map against a later period.
#
# It runs as a script (`python docs/tutorial.py`; the test suite does exactly that) or as a
# notebook (`jupytext --to notebook docs/tutorial.py`, then open `docs/tutorial.ipynb`).

# %%
import json
import os
import sys
import tempfile
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # a script: draw to files, not to a window
    matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import rtm


def repository_root() -> Path:
    """The folder holding sample_data/, from the repository or from docs/."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "sample_data" / "crimes.csv").exists():
            return folder
    raise FileNotFoundError("run this tutorial from the rtm repository (sample_data/ not found)")


ROOT = repository_root()
SAMPLE = ROOT / "sample_data"
OUT = Path(os.environ.get("RTM_TUTORIAL_OUT") or tempfile.mkdtemp(prefix="rtm-tutorial-"))
print("rtm", rtm.__version__, "| outputs in", OUT)

# %% [markdown]
# ## 1. Load the study
#
# `rtm.load_study` reads the study area, builds the grid of cells (half a block by default), reads
# the events (here a CSV with `x`/`y` columns in the area's CRS), keeps the robberies, counts them
# per cell, and reads one factor per layer of `factors/`. Parks are declared *protective*.

# %%
BLOCK = 150  # metres: the average street-block length of the sample city

study = rtm.load_study(
    area=SAMPLE / "area.gpkg",
    events=SAMPLE / "crimes.csv",
    factors_dir=SAMPLE / "factors",
    protective=["parks"],
    where=["type=robbery"],
    block_length=BLOCK,
)
grid = study.grid
print(f"{grid.n_rows} x {grid.n_cols} cells of {grid.cell_size:g} m, {grid.n_active:,} in the area")
print(f"{study.counts.n_used:,} robberies in the area, {study.counts.n_outside} outside dropped")
pd.DataFrame(
    [
        {"factor": f.name, "features": f.n_features, "protective": f.protective}
        for f in study.factors
    ]
)

# %% [markdown]
# ## 2. Candidate layers
#
# Every factor becomes binary candidates: *proximity* (cell centre within *d* of a feature) and
# *density* (kernel density with radius *d* at least the mean + 2 SD), for *d* = 1, 2, 3 blocks.

# %%
print("spatial influences:", rtm.spatial_influences(BLOCK))
candidates = rtm.build_study_candidates(study)
print(len(candidates.names), "candidates, e.g.", candidates.names[:3])
print(len(candidates.dropped), "dropped as constant over the area")

# %% [markdown]
# ## 3. Fit
#
# `RiskTerrainModel` follows the scikit-learn contract: the constructor only stores the settings,
# `fit` does the work and sets `result_`. The seed fixes the cross-validation folds, so the same
# data and seed always give the same model.

# %%
model = rtm.RiskTerrainModel(seed=0).fit(candidates, study.counts.counts)
result = model.result_
print(result.summary())

# %% [markdown]
# ## 4. The model table
#
# One row per selected factor, most influential first. The **relative risk value** (RRV) is the
# factor by which the expected count is multiplied where the factor is present; for a protective
# factor, the factor by which it is divided. p-values are computed after selection on the same
# data: they overstate significance.

# %%
table = result.model_table()
table

# %% [markdown]
# Compare with the terrain planted in the sample city:

# %%
truth = json.loads((SAMPLE / "truth.json").read_text())
truth

# %% [markdown]
# The fitted object keeps everything: the selected factors as named records, the winning
# distribution, and the relative risk score (RRS) per cell.

# %%
top = result.factors[0]
print(top.name, top.operationalization, top.spatial_influence, round(top.relative_risk_value, 2))
print(result.distribution, result.nb_form, "dispersion", round(result.dispersion or 0, 3))
rrs = result.rrs_raster()  # (rows, cols), NaN outside the area
print(f"RRS from {np.nanmin(rrs):.2f} to {np.nanmax(rrs):.2f}")

# %% [markdown]
# ## 5. Maps
#
# `plot()` draws the RRS on a matplotlib Axes; `explore()` returns the interactive map (the same as
# the run folder's `map.html`), which displays itself in a notebook and saves to a self-contained
# HTML file that works offline.

# %%
ax = result.plot(title="Relative risk of robbery, sample city")
ax.figure.savefig(OUT / "risk.png", dpi=80)

# %%
risk_map = result.explore(study)
risk_map.save(OUT / "map.html")
print("interactive map:", OUT / "map.html")
risk_map

# %% [markdown]
# ## 6. Does it predict later robberies?
#
# A model table describes the data it was fitted to. To check the map, fit on the first half of
# the year and score the second half, side by side with maps that need no risk factor:
# prior-period hot spots (kernel density) and prior-period counts. `rtm.analyze` is the Python
# twin of `rtm analyze`: it writes the run folder that `rtm.validate_run` (`rtm validate`) reads.

# %%
first_half = rtm.analyze(
    events=SAMPLE / "crimes.csv",
    area=SAMPLE / "area.gpkg",
    factors_dir=SAMPLE / "factors",
    protective=["parks"],
    where=["type=robbery", "month=1..6"],
    block_length=BLOCK,
    out=OUT / "run-h1",
    overwrite=True,
)
validation = rtm.validate_run(
    OUT / "run-h1", SAMPLE / "crimes.csv", where=["type=robbery", "month=7..12"]
)
print(f"AUC of the risk map on July-December: {validation['auc']:.3f}")
scores = pd.DataFrame(validation.table()).set_index("model")
scores[[c for c in scores.columns if c == "auc" or c.startswith("capture")]]

# %% [markdown]
# Capture at *p*% is the share of later robberies in the *p*% of the area with the highest
# scores; PAI divides it by the area share. Tied scores share their events pro rata. Where the
# risk map does not beat the hot spots, its value is in *why* places are risky (the factors to
# work on), not in *where*.
#
# ## Optional: inner London
#
# With the open London data beside the repository (`../shared/data/london`, see
# [Data attribution](data-attribution.md)), the same steps run on real data. This cell does
# nothing when the data is absent; it uses coarse 200 m cells and the first quarter of 2022 so
# that it stays quick.

# %%
LONDON = Path(os.environ.get("RTM_LONDON_DATA", ROOT.parent / "shared" / "data" / "london"))
if (LONDON / "study_area.shp").exists() and os.environ.get("RTM_TUTORIAL_LONDON", "1") != "0":
    london = rtm.analyze(
        events=LONDON / "crimes_2022.csv.gz",
        area=LONDON / "study_area.shp",
        factors=[f"{name}={LONDON / 'factors' / (name + '.shp')}" for name in
                 ("bus_stops", "atms", "nightclubs", "fast_food", "pubs")],
        where=["type=robbery", "month=1..3"],
        block_length=200,
        cell_size=200,
    )
    print(london.summary())
else:
    print("London data not found: skipped")

# %% [markdown]
# ## Where next
#
# - [How rtm works](method.md): the method, its formulas and its limits.
# - [How-to guides](how-to/block-length.md): block length, filters, protective factors, exports.
# - [Python API](reference/api.md) and [command line](reference/cli.md) references.

# %%
plt.close("all")
