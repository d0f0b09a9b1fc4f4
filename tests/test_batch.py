"""Batches without a cluster: writing a report's files as one set, the output directory's lock and
leftovers, the flags of `costmodel batch`, and what a warm kernel preloads."""

import os
import signal
import threading
from pathlib import Path

import pytest

from costmodel import files, reporting
from costmodel.cli import main as cli_main
from costmodel.reporting import batch
from costmodel.reporting.report import Built, write


def test_a_built_report_is_written_as_one_set(tmp_path):
    built = Built("r", {"memory": "16GiB"}, {"ipynb": b"{}", "html": b"<html>", "pdf": b"%PDF-1.7"}, {"splits": 1.0}, 2.0)
    done = write(built, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["r.html", "r.ipynb", "r.pdf"]
    assert done.paths["pdf"].read_bytes() == b"%PDF-1.7" and done.summary == {"splits": 1.0} and done.seconds == 2.0


def test_a_set_that_cannot_be_staged_touches_no_target(tmp_path):
    (tmp_path / "a.html").write_text("old")
    blocker = tmp_path / "sub"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(OSError):
        files.atomic_write_set({tmp_path / "a.html": b"new", blocker / "b.html": b"new"})
    assert (tmp_path / "a.html").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html", "sub"], "no temporary left"


def test_leftover_temporaries_of_a_killed_writer_are_removed_and_nothing_else(tmp_path):
    keep = ["r.html", ".hidden-notes", ".r.html.notes", "index.html", ".x.txt.abcd1234"]
    stale = [".r.html.k2j_9zq1", ".r.pdf.00000000", ".index.html.a1b2c3d4", ".r.ipynb.zzzzzzzz", ".index.csv.abcdefgh"]
    for name in keep + stale:
        (tmp_path / name).write_text("x")
    removed = files.remove_staged(tmp_path, batch.KINDS)
    assert sorted(p.name for p in removed) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_a_directory_is_locked_for_one_batch_at_a_time(tmp_path):
    with files.lock_directory(tmp_path / "out"):
        with pytest.raises(files.DirectoryBusy):
            with files.lock_directory(tmp_path / "out"):
                pass
    with files.lock_directory(tmp_path / "out"):  # released with the first holder
        pass
    assert list((tmp_path / "out").iterdir()) == [], "no lock file left"


def test_a_second_batch_into_the_same_directory_is_refused_naming_output(tmp_path, capsys):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("- {memory: 16GiB}\n")
    out = tmp_path / "out"
    with files.lock_directory(out):  # what a running batch holds
        status = cli_main(["batch", str(sweep), "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("costmodel batch: error: --output: got ")
    assert "no other costmodel batch is writing into" in err and len(err.strip().splitlines()) == 1


def test_workers_and_scheduler_together_exit_2_naming_workers(tmp_path, capsys):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("- {memory: 16GiB}\n")
    status = cli_main(["batch", str(sweep), "-o", str(tmp_path / "out"), "--workers", "2",
                       "--scheduler", "tcp://127.0.0.1:1", "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and "costmodel batch: error: --workers: got 2" in err and "existing scheduler" in err
    assert not (tmp_path / "out").exists(), "nothing started, nothing written"


@pytest.mark.parametrize("flag", ["--workers", "-j", "--jobs"])
def test_workers_aliases_reach_the_library_as_jobs(flag, tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("- {memory: 16GiB}\n")
    seen = {}

    def fake(entries, outdir, **options):
        seen.update(options, outdir=outdir)
        return [reporting.Outcome(1, entries[0], "a")]

    monkeypatch.setattr(reporting, "render_batch", fake)
    assert cli_main(["batch", str(sweep), "-o", str(tmp_path / "o"), flag, "3", "--no-progress"]) == 0
    assert seen["jobs"] == 3 and seen["scheduler"] is None and seen["outdir"] == str(tmp_path / "o")
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'o'}/index.html: 1 of 1 reports written"


def test_zero_workers_is_an_input_error(tmp_path, capsys):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("- {memory: 16GiB}\n")
    assert cli_main(["batch", str(sweep), "-o", str(tmp_path / "o"), "-j", "0", "--no-progress"]) == 2
    assert "costmodel batch: error: --workers: got 0; expected a whole number ≥ 1" in capsys.readouterr().err


def test_an_interrupted_batch_exits_130_and_says_what_was_written(tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("- {memory: 16GiB}\n- {memory: 32GiB}\n")

    def interrupted(entries, outdir, **_):
        raise reporting.BatchInterrupted([reporting.Outcome(1, entries[0], "a"),
                                          reporting.Outcome(2, entries[1], error=batch.INTERRUPTED)])

    monkeypatch.setattr(reporting, "render_batch", interrupted)
    assert cli_main(["batch", str(sweep), "-o", str(tmp_path / "o"), "--no-progress"]) == 130
    assert "1 of 2 reports written; interrupted" in capsys.readouterr().err


def test_ctrl_c_waits_for_the_files_being_written():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with batch._uninterrupted():
            os.kill(os.getpid(), signal.SIGINT)
            threading.Event().wait(0.05)  # the signal arrives here, and is held back
            done.append("written")
    assert done == ["written"]


def test_a_warm_kernel_preloads_the_notebooks_imports():
    from costmodel.reporting import workers

    path = reporting.notebook_path("report")
    code = workers.imports_of(reporting.read_notebook(path))
    assert "from costmodel.reporting import cards, figures, plots, sections" in code
    assert all(line.startswith(("import ", "from ")) and line in path.read_text() for line in code.splitlines())
    assert workers.notebook_reference(reporting.notebook_path("report")) == "report", "shipped: by name"
    assert workers.notebook_reference(Path("/tmp/x/mine.py")) == "/tmp/x/mine.py"


def test_two_calibrations_with_one_file_name_get_two_reports_and_a_repeat_is_refused(tmp_path, monkeypatch):
    from costmodel import calibration

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        calibration.default().save(tmp_path / folder / "cal.json")
    seen = []
    monkeypatch.setattr(batch._Batch, "_on_cluster", lambda self, *a: seen.extend(e.name for e in self.todo))
    entries = [{"calibration": str(tmp_path / "a" / "cal.json")}, {"calibration": str(tmp_path / "b" / "cal.json")},
               {"calibration": str(tmp_path / "a" / "cal.json")}]
    outcomes = reporting.render_batch(entries, tmp_path / "out", progress=False)
    assert len(seen) == 2 and seen[0].endswith("calibration_cal") and seen[1].startswith(seen[0] + "-")
    assert len(seen[1]) == len(seen[0]) + 9, "the second name is the first plus eight hex digits"
    # the fake cluster rendered nothing: only the refused entry has an outcome
    assert [(o.index, o.error) for o in outcomes] == [(3, f"entry 3: same report as entry 1 ({seen[0]})")]
