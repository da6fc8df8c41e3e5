"""Never lose a user's data: ownership of outputs, one writer, interrupts, kills, full disks.

Every test here runs the real ``rtm`` command in a real process, on real files: a folder
of the user's that rtm must not touch, two processes racing for one output, Ctrl-C and
SIGKILL at chosen moments, a real full (tmpfs) and a real read-only file system (mounted
in a private mount namespace with ``unshare``; skipped with a message where the machine
does not allow it), and a reader that closes the pipe early.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rtm.export.ownership import MARKER, file_is_rtms, folder_is_rtms, foreign_entries
from tests.conftest import SAMPLE, run_rtm, sample_analyze_args

RTM = [sys.executable, "-m", "rtm_cli.main"]
ENV = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}


def user_folder(path: Path) -> dict[str, bytes]:
    """A folder of the user's: notes, an old map, a copy of their input data."""
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("my notes")
    (path / "old-map.html").write_text("<html>last year's map</html>")
    shutil.copy(SAMPLE / "crimes.csv", path / "crimes.csv")
    return snapshot(path)


def snapshot(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def one_error(stderr: str) -> str:
    """The single line of an error: no traceback, nothing else."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("rtm: "), stderr
    return lines[0]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("safety") / "run"
    result = run_rtm(*sample_analyze_args(out, "-q"))
    assert result.returncode == 0, result.stderr
    return out


# --------------------------------------------------------------------------- 1. ownership


def test_overwrite_never_replaces_a_users_folder(tmp_path: Path) -> None:
    documents = tmp_path / "Documents"
    before = user_folder(documents)
    result = run_rtm(*sample_analyze_args(documents, "--overwrite"))
    assert result.returncode == 5
    line = one_error(result.stderr)
    assert "holds files rtm did not write (crimes.csv, notes.txt, old-map.html)" in line
    assert "even with --overwrite" in line
    assert snapshot(documents) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Documents"]  # no lock, no temporary


def test_out_dot_is_refused_cleanly(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("mine")
    result = run_rtm(*sample_analyze_args(Path("."), "--overwrite"), cwd=tmp_path)
    assert result.returncode == 5
    assert "names the current folder" in one_error(result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_an_rtm_run_is_replaced_and_carries_its_marker(tmp_path: Path, sample_run: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(sample_run, out)
    marker = json.loads((out / MARKER).read_text())
    assert marker["written_by"] == "rtm" and marker["kind"] == "run"
    assert set(marker["files"]) == {p.name for p in out.iterdir()} - {MARKER}
    again = run_rtm(*sample_analyze_args(out, "-q"))
    assert again.returncode == 5
    assert "already exists (use --overwrite" in one_error(again.stderr)
    replaced = run_rtm(*sample_analyze_args(out, "-q", "--overwrite"))
    assert replaced.returncode == 0, replaced.stderr
    assert folder_is_rtms(out)


def test_a_gis_statistics_sidecar_of_rtms_raster_does_not_block_overwrite(
    tmp_path: Path, sample_run: Path
) -> None:
    """QGIS writes ``risk.tif.aux.xml`` when it draws the raster: a cache of rtm's file."""
    out = tmp_path / "run"
    shutil.copytree(sample_run, out)
    (out / "risk.tif.aux.xml").write_text("<PAMDataset/>")
    (out / "notes.tif.aux.xml").write_text("<PAMDataset/>")  # not a sidecar of rtm's file
    refused = run_rtm(*sample_analyze_args(out, "-q", "--overwrite"))
    assert refused.returncode == 5
    line = one_error(refused.stderr)
    assert "notes.tif.aux.xml" in line and "risk.tif.aux.xml" not in line
    (out / "notes.tif.aux.xml").unlink()
    replaced = run_rtm(*sample_analyze_args(out, "-q", "--overwrite"))
    assert replaced.returncode == 0, replaced.stderr
    assert not (out / "risk.tif.aux.xml").exists()


def test_a_file_the_user_added_to_a_run_is_never_deleted(tmp_path: Path, sample_run: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(sample_run, out)
    (out / "my-annotations.txt").write_text("keep me")
    result = run_rtm(*sample_analyze_args(out, "--overwrite"))
    assert result.returncode == 5
    assert "my-annotations.txt" in one_error(result.stderr)
    assert (out / "my-annotations.txt").read_text() == "keep me"
    # rtm map copies only rtm's files to a new folder, and refuses to re-render in place
    in_place = run_rtm("map", str(out), "--overwrite")
    assert in_place.returncode == 5 and "my-annotations.txt" in one_error(in_place.stderr)
    copy = run_rtm("map", str(out), "--out", str(tmp_path / "copy"), "-q")
    assert copy.returncode == 0, copy.stderr
    assert not (tmp_path / "copy" / "my-annotations.txt").exists()
    assert folder_is_rtms(tmp_path / "copy")


def test_map_validate_and_layers_never_replace_a_users_files(
    tmp_path: Path, sample_run: Path
) -> None:
    documents = tmp_path / "Documents"
    before = user_folder(documents)
    mapped = run_rtm("map", str(sample_run), "--out", str(documents), "--overwrite")
    assert mapped.returncode == 5 and "notes.txt" in one_error(mapped.stderr)
    # a file of the user's under the name an output would take
    mine = tmp_path / "validation.json"
    mine.write_text('{"my": "numbers"}')
    validated = run_rtm(
        "validate", str(sample_run), str(SAMPLE / "crimes.csv"), "--where", "type=robbery",
        "--out", str(mine), "--overwrite",
    )  # fmt: skip
    assert validated.returncode == 5
    assert "was not written by rtm" in one_error(validated.stderr)
    assert mine.read_text() == '{"my": "numbers"}'
    picture = tmp_path / "layers.tif"
    picture.write_bytes(b"II*\0 my own raster")
    layered = run_rtm(
        "layers", "--area", str(SAMPLE / "area.gpkg"), "--factors-dir", str(SAMPLE / "factors"),
        "--block-length", "150", "--out", str(picture), "--overwrite",
    )  # fmt: skip
    assert layered.returncode == 5 and "was not written by rtm" in one_error(layered.stderr)
    assert picture.read_bytes() == b"II*\0 my own raster"
    assert snapshot(documents) == before


def test_validate_replaces_its_own_file_and_registers_it_in_the_run(
    tmp_path: Path, sample_run: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(sample_run, run)
    args = ["validate", str(run), str(SAMPLE / "crimes.csv"), "--where", "type=burglary", "-q"]
    args.append("--no-challengers")  # the files are the point here, not what is in them
    first = run_rtm(*args)
    assert first.returncode == 0, first.stderr
    assert {"validation.json", "capture.png"} <= set(
        json.loads((run / MARKER).read_text())["files"]
    )
    assert file_is_rtms(run / "validation.json") and file_is_rtms(run / "capture.png")
    assert run_rtm(*args).returncode == 5  # exists
    assert run_rtm(*args, "--overwrite").returncode == 0
    assert foreign_entries(run) == []
    elsewhere = tmp_path / "v" / "check.json"
    assert run_rtm(*args, "--out", str(elsewhere)).returncode == 0
    assert file_is_rtms(elsewhere) and file_is_rtms(elsewhere.with_name("check_capture.png"))
    assert run_rtm(*args, "--out", str(elsewhere), "--overwrite").returncode == 0


def test_batch_never_writes_into_a_users_folder(tmp_path: Path) -> None:
    config = tmp_path / "nightly.toml"
    config.write_text(
        f'[analysis]\nevents = "{SAMPLE / "crimes.csv"}"\narea = "{SAMPLE / "area.gpkg"}"\n'
        f'factors_dir = "{SAMPLE / "factors"}"\nprotective = ["parks"]\nblock_length = 150\n'
        'where = ["type=robbery"]\n'
    )
    documents = tmp_path / "Documents"
    before = user_folder(documents)
    result = run_rtm("batch", str(config), "--out", str(documents))
    assert result.returncode == 5
    assert "notes.txt" in one_error(result.stderr)
    assert snapshot(documents) == before and sorted(p.name for p in documents.iterdir()) == sorted(
        before
    )
    out = tmp_path / "runs"
    assert run_rtm("batch", str(config), "--out", str(out), "-q").returncode == 0
    assert folder_is_rtms(out, kind="batch")
    assert run_rtm("batch", str(config), "--out", str(out), "-q", "--force").returncode == 0


def test_out_naming_an_existing_file_is_an_output_error(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("mine")
    result = run_rtm(*sample_analyze_args(afile))
    assert result.returncode == 5
    assert "exists and is a file, not a folder" in one_error(result.stderr)
    assert afile.read_text() == "mine"


# --------------------------------------------------------------------------- 2. one writer


def test_a_second_process_on_the_same_out_fails_at_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = subprocess.Popen(
        [*RTM, *sample_analyze_args(out, "-q", cell_size="30")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    lock = tmp_path / ".run.rtm-lock"
    deadline = time.monotonic() + 60
    while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lock.exists(), "the first run never took its lock"
    second = run_rtm(*sample_analyze_args(out, "-q", "--overwrite"))
    _, first_err = first.communicate(timeout=600)
    assert first.returncode == 0, first_err
    assert second.returncode == 5
    assert "another rtm process" in one_error(second.stderr)
    assert folder_is_rtms(out)
    report = json.loads((out / "report.json").read_text())
    assert report["inputs"]["cell_size"] == 30.0  # the first run's output, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # lock removed


# --------------------------------------------------------------------------- 3. interrupts


def _interrupt_at(
    args: list[str], trigger: str, delay: float, sig: int = signal.SIGINT
) -> tuple[int, list[str], str]:
    """Run rtm -v; after the progress line containing ``trigger`` and ``delay`` s, signal it."""
    process = subprocess.Popen(
        [*RTM, *args, "-v"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    seen = []
    assert process.stderr is not None
    for line in process.stderr:
        seen.append(line.rstrip("\n"))
        if trigger in line:
            time.sleep(delay)
            process.send_signal(sig)
            break
    stdout, rest = process.communicate(timeout=600)
    after = [line for line in rest.splitlines() if line.strip()]
    return process.returncode, after, stdout


def _check_interrupted_or_whole(out: Path, code: int, after: list[str], expected: int) -> str:
    """Either the run finished whole (0), or it was interrupted with one line and no output."""
    assert code in (0, expected), (code, after)
    text = "\n".join(after)
    assert "Traceback" not in text and "Exception ignored" not in text, text
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert leftovers == [], leftovers
    if code == 0:
        assert folder_is_rtms(out) and (out / "map.html").exists()
        return "finished"
    messages = [line for line in after if not line.startswith("rtm: ") or "interrupted" in line
                or "terminated" in line]  # fmt: skip
    assert messages[-1] in (
        "rtm: interrupted; no output was written",
        "rtm: terminated; no output was written",
    ), after
    assert not out.exists()
    return "interrupted"


@pytest.mark.parametrize(
    "trigger,delays",
    [
        ("layers:", (0.0, 0.5)),  # culling (~1.3 s at 20 m cells)
        ("culling:", (0.0, 0.05)),  # stepwise (~0.1 s)
        ("stepwise:", (0.2, 0.6, 1.0)),  # the outputs (~1.3 s)
    ],
    ids=["culling", "stepwise", "outputs"],
)
def test_ctrl_c_at_every_stage(tmp_path: Path, trigger: str, delays: tuple[float, ...]) -> None:
    outcomes = []
    for number, delay in enumerate(delays):
        out = tmp_path / f"run{number}"
        code, after, _ = _interrupt_at(sample_analyze_args(out, cell_size="20"), trigger, delay)
        outcomes.append(_check_interrupted_or_whole(out, code, after, 130))
    assert "interrupted" in outcomes


@pytest.mark.london
def test_ctrl_c_inside_the_stepwise_kernels_on_london(tmp_path: Path, london_dir: Path) -> None:
    """London's stepwise search runs ~0.7 s of numba kernels: Ctrl-C lands inside them."""
    outcomes = []
    for number, delay in enumerate((0.05, 0.2, 0.35)):
        out = tmp_path / f"run{number}"
        args = [
            "analyze", str(london_dir / "crimes_2022.csv.gz"),
            "--area", str(london_dir / "study_area.shp"),
            "--factors-dir", str(london_dir / "factors"),
            "--where", "type=robbery", "--where", "month=1..6",
            "--block-length", "200", "--cell-size", "100", "--out", str(out),
        ]  # fmt: skip
        code, after, _ = _interrupt_at(args, "culling:", delay)
        outcomes.append(_check_interrupted_or_whole(out, code, after, 130))
    assert outcomes.count("interrupted") >= 2


def test_sigterm_is_an_interrupt_too(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, after, _ = _interrupt_at(
        sample_analyze_args(out, cell_size="15"), "layers:", 0.1, signal.SIGTERM
    )
    assert _check_interrupted_or_whole(out, code, after, 143) == "interrupted"
    assert code == 143


def test_a_killed_run_leaves_a_temporary_that_the_next_run_removes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # what must survive: another target's temporary, a user's hidden file of a similar name
    (tmp_path / ".other.rtm-tmp-abc").mkdir()
    (tmp_path / ".other.rtm-tmp-abc" / MARKER).write_text("{}")
    (tmp_path / ".run.notes").write_text("mine")
    process = subprocess.Popen(
        [*RTM, *sample_analyze_args(out, "-v", cell_size="15")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "stepwise:" in line:
            break
    # kill it while the outputs are being written into the temporary folder
    deadline = time.monotonic() + 60
    temporaries: list[Path] = []
    while time.monotonic() < deadline:
        temporaries = [p for p in tmp_path.glob(".run.rtm-tmp-*") if any(p.iterdir())]
        if temporaries and len(list(temporaries[0].iterdir())) >= 3:
            break
        time.sleep(0.01)
    process.kill()
    process.communicate(timeout=60)
    assert temporaries and temporaries[0].exists(), "the kill came too late to leave a temporary"
    assert not out.exists()
    result = run_rtm(*sample_analyze_args(out, "-q"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.rtm-tmp-abc", ".run.notes", "run"]
    assert (tmp_path / ".run.notes").read_text() == "mine"


# --------------------------------------------------------------------------- 4. environment


def _namespace_available() -> bool:
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt && echo ok"],
        capture_output=True,
        text=True,
    )
    return probe.returncode == 0 and "ok" in probe.stdout


needs_mounts = pytest.mark.skipif(
    shutil.which("unshare") is None or not _namespace_available(),
    reason="mounting a small tmpfs needs `unshare -rm` (user namespaces), unavailable here",
)


def _in_mount_namespace(
    mount: str, command: list[str], target: Path
) -> subprocess.CompletedProcess:
    """Run ``command`` with a fresh tmpfs (``mount`` options) mounted at ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    quoted = " ".join(f"'{part}'" for part in command)
    script = f"mount -t tmpfs -o {mount} tmpfs '{target}' && {quoted}; code=$?; ls -A '{target}'"
    script += "; exit $code"
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, env=ENV, timeout=600
    )


@needs_mounts
def test_a_full_disk_is_an_output_error_and_leaves_nothing(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    # 1 MB: room to start writing the run folder, not to finish it
    result = _in_mount_namespace("size=1m", [*RTM, *sample_analyze_args(disk / "run", "-q")], disk)
    assert result.returncode == 5, result.stderr
    line = one_error(result.stderr)
    assert f"--out {disk / 'run'}: cannot be written (No space left on device)" in line
    assert result.stdout.strip() == ""  # `ls -A` of the disk: nothing left on it


@needs_mounts
def test_batch_on_a_read_only_file_system(tmp_path: Path) -> None:
    config = tmp_path / "nightly.toml"
    config.write_text(
        f'[analysis]\nevents = "{SAMPLE / "crimes.csv"}"\narea = "{SAMPLE / "area.gpkg"}"\n'
        f'factors_dir = "{SAMPLE / "factors"}"\nblock_length = 150\n'
    )
    disk = tmp_path / "ro"
    command = [*RTM, "batch", str(config), "--out", str(disk / "runs")]
    result = _in_mount_namespace("size=1m,ro", command, disk)
    assert result.returncode == 5, result.stderr
    assert "read-only file system" in one_error(result.stderr).lower()
    for other in (
        [*RTM, *sample_analyze_args(disk / "run")],
        [*RTM, "validate-temporal", str(SAMPLE / "crimes.csv"), "--area", str(SAMPLE / "area.gpkg"),
         "--factors-dir", str(SAMPLE / "factors"), "--block-length", "150",
         "--out", str(disk / "cv.json")],
    ):  # fmt: skip
        result = _in_mount_namespace("size=1m,ro", other, disk)
        assert result.returncode == 5, result.stderr
        assert "read-only file system" in one_error(result.stderr)


def test_a_closed_stderr_does_not_fail_a_good_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = subprocess.Popen(
        [*RTM, *sample_analyze_args(out, "-v")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert process.stderr is not None and process.stdout is not None
    process.stderr.readline()
    process.stderr.close()  # `rtm ... -v 2>&1 | head -1`: the reader is gone
    process.stdout.close()
    assert process.wait(timeout=600) == 0
    assert folder_is_rtms(out) and (out / "map.html").exists()


def test_a_closed_stdout_does_not_fail_a_good_run(tmp_path: Path) -> None:
    shell = subprocess.run(
        ["bash", "-c", " ".join(f"'{a}'" for a in [*RTM, *sample_analyze_args(tmp_path / "run")])
         + " | head -c1 >/dev/null; exit ${PIPESTATUS[0]}"],
        capture_output=True, text=True, env=ENV, timeout=600,
    )  # fmt: skip
    assert shell.returncode == 0, shell.stderr
    assert "Traceback" not in shell.stderr and "BrokenPipe" not in shell.stderr


# --------------------------------------------------------------------------- 5. sizes


def test_a_runaway_cell_size_is_refused_before_any_work(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_rtm(*sample_analyze_args(tmp_path / "run", cell_size="0.05"))
    assert result.returncode == 2
    line = one_error(result.stderr)
    assert "--cell-size 0.05 m:" in line and "would need about" in line
    assert "use a cell size of at least" in line
    assert time.monotonic() - started < 60
    assert list(tmp_path.iterdir()) == []


def test_the_memory_estimate_warns_then_refuses() -> None:
    import warnings

    from rtm.errors import ParameterError, RTMWarning
    from rtm.resources import check_memory, estimate_memory

    side = 20_000.0  # a 20 km square at 2 m cells: 10^8 cells
    area = side * side
    need = estimate_memory(area / 2**2, 48, area / 2**2)
    assert 40 * 2**30 < need < 50 * 2**30
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_memory(area, 4 * side, side, side, 2, 48, available=int(need * 1.5))
    assert any(issubclass(w.category, RTMWarning) for w in caught)
    available = 16 * 2**30
    with pytest.raises(ParameterError, match="use a cell size of at least") as error:
        check_memory(area, 4 * side, side, side, 2, 48, available=available)
    smallest = float(str(error.value).rsplit("at least ", 1)[1].split()[0])
    # the suggested cell size, and no smaller one, fits within half of that memory
    assert estimate_memory(area / smallest**2, 48, area / smallest**2) <= available / 2
    assert estimate_memory(area / (smallest - 1) ** 2, 48, area / (smallest - 1) ** 2) > (
        available / 2 * 0.95
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_memory(area, 4 * side, side, side, 2, 48, available=need * 10)
    with pytest.raises(ParameterError, match="too little memory"):
        check_memory(area, 4 * side, side, side, 2, 48, available=300 * 2**20)


@pytest.mark.london
def test_the_estimate_is_close_to_the_measured_peak(tmp_path: Path, london_dir: Path) -> None:
    """The model of peak memory against a real run's peak (London, 50 m, 65k cells).

    The peak is the child's own ``VmHWM``: ``ru_maxrss`` survives ``exec`` and would
    report pytest's own peak when the suite has grown it past the run's.
    """
    from rtm.resources import estimate_memory

    out = tmp_path / "run"
    code = (
        "from rtm_cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    )
    args = [
        "analyze", str(london_dir / "crimes_2022.csv.gz"),
        "--area", str(london_dir / "study_area.shp"), "--factors-dir", str(london_dir / "factors"),
        "--where", "type=robbery", "--block-length", "200", "--cell-size", "50",
        "--out", str(out), "-q",
    ]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=ENV, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    peak = int(proc.stdout.strip().splitlines()[-1]) * 1024
    report = json.loads((out / "report.json").read_text())
    grid = report["inputs"]["grid"]
    estimate = estimate_memory(
        report["inputs"]["cells"], report["candidates"], grid["n_rows"] * grid["n_cols"]
    )
    assert 0.6 * peak <= estimate <= 1.6 * peak, (estimate, peak)
