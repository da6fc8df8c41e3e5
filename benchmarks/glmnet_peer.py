"""R's ``glmnet::cv.glmnet`` side by side with rtm's culling, on the same matrix and folds.

Both fit the nonnegative Poisson elastic net (alpha = l1_ratio = 0.95,
``standardize=TRUE``) on the same lambda path (rtm's, passed to R) and the same
fold assignment (``foldid``), and keep the nonzero coefficients at lambda.min.
The matrix goes to R as raw int8 bytes (``readBin``), column-major. R's read and
conversion time is excluded: only the ``cv.glmnet`` call is timed.

When R or glmnet is missing this prints how to get them and skips the comparison
(it never installs anything).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

INSTALL_HINT = (
    "R with glmnet is needed for this comparison: apt-get install r-base-core r-cran-glmnet "
    "(or in R: install.packages('glmnet'))"
)

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
meta <- readLines(file.path(dir, "meta.txt"))
n <- as.integer(meta[1]); p <- as.integer(meta[2]); alpha <- as.numeric(meta[3])
suppressMessages(library(glmnet))
con <- file(file.path(dir, "X.bin"), "rb")
x <- readBin(con, what = "integer", size = 1, signed = TRUE, n = n * p)
close(con)
x <- matrix(as.numeric(x), nrow = n, ncol = p)
y <- scan(file.path(dir, "y.txt"), quiet = TRUE)
foldid <- scan(file.path(dir, "foldid.txt"), quiet = TRUE)
lambda <- scan(file.path(dir, "lambda.txt"), quiet = TRUE)
# protective columns are coded 0/-1: lower.limits = 0 acts on their coefficient as in rtm
t0 <- proc.time()[["elapsed"]]
fit <- cv.glmnet(x, y, family = "poisson", alpha = alpha, lambda = lambda, foldid = foldid,
                 lower.limits = 0, standardize = TRUE)
elapsed <- proc.time()[["elapsed"]] - t0
b <- as.numeric(coef(fit, s = "lambda.min"))[-1]
cat(sprintf("%.6f\n", elapsed), file = file.path(dir, "time.txt"))
cat(which(b > 0) - 1, file = file.path(dir, "survivors.txt"), sep = "\n")
cat(sprintf("%d\n", which(fit$lambda == fit$lambda.min) - 1), file = file.path(dir, "index.txt"))
"""


def glmnet_available() -> bool:
    """Whether ``Rscript`` exists and can load glmnet."""
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(
        ["Rscript", "-e", "suppressMessages(library(glmnet))"], capture_output=True, check=False
    )
    return probe.returncode == 0


def _problem(params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    if params["source"] == "london":
        from benchmarks.paths import LONDON
        from rtm.study import build_study_candidates, load_study

        study = load_study(
            area=LONDON / "study_area.shp",
            block_length=200,
            cell_size=params["cell_size"],
            events=LONDON / "crimes_2022.csv.gz",
            factors_dir=LONDON / "factors",
            where=["type=robbery", "month=1..6"],
        )
        candidates = build_study_candidates(study)
        assert study.counts is not None
        return candidates.values, study.counts.counts
    from benchmarks.scale_city import generate

    city = generate(params["n_cells"])
    return city.candidates.values, city.counts


def compare(params: dict[str, Any], alpha: float = 0.95) -> dict[str, Any]:
    """Time rtm's culling and cv.glmnet on the same problem; compare survivors."""
    from rtm.selection.culling import cull

    X, y = _problem(params)
    cull(X[:2000], y[:2000], l1_ratios=(alpha,), n_lambdas=5)  # load the kernels
    times = []
    for _ in range(2):
        start = time.perf_counter()
        ours = cull(X, y, l1_ratios=(alpha,))
        times.append(time.perf_counter() - start)
    record: dict[str, Any] = {
        "cells": int(X.shape[0]),
        "candidates": int(X.shape[1]),
        "alpha": alpha,
        "rtm_cull_s": min(times),
        "rtm_cull_runs_s": times,
        "rtm_survivors": list(ours.survivors),
        "rtm_lambda_index": ours.lambda_index,
    }
    if not glmnet_available():
        print(INSTALL_HINT)
        record["glmnet"] = f"skipped: {INSTALL_HINT}"
        return record
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        np.asfortranarray(X).T.tofile(folder / "X.bin")  # column-major bytes
        np.savetxt(folder / "y.txt", y, fmt="%d")
        np.savetxt(folder / "foldid.txt", ours.folds + 1, fmt="%d")
        # the penalties rtm reached (its path ends early as glmnet's does)
        path = ours.lambdas[0]
        np.savetxt(folder / "lambda.txt", path[np.isfinite(path)], fmt="%.17g")
        (folder / "meta.txt").write_text(f"{X.shape[0]}\n{X.shape[1]}\n{alpha}\n")
        (folder / "cv.R").write_text(R_SCRIPT)
        proc = subprocess.run(
            ["Rscript", str(folder / "cv.R"), str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            record["glmnet"] = f"failed: {proc.stderr[-500:]}"
            return record
        glmnet_s = float((folder / "time.txt").read_text())
        text = (folder / "survivors.txt").read_text().split()
        theirs = sorted(int(v) for v in text)
        index = int((folder / "index.txt").read_text())
    ours_set, theirs_set = set(ours.survivors), set(theirs)
    record.update(
        {
            "glmnet_cv_s": glmnet_s,
            "glmnet_survivors": theirs,
            "glmnet_lambda_index": index,
            "speedup": glmnet_s / record["rtm_cull_s"],
            "only_rtm": sorted(ours_set - theirs_set),
            "only_glmnet": sorted(theirs_set - ours_set),
        }
    )
    print(json.dumps({k: v for k, v in record.items() if "survivors" not in k}))
    return record
