"""Batches on a real Dask cluster: one LocalCluster of 2 single-threaded worker processes on the
loopback address, shared by the tests of this file (the issue's: a worker killed mid-report, an
invalid entry, a report that kills its worker every time, Ctrl-C mid-batch)."""

import os
import signal
import threading
import time

import pytest

from costmodel import reporting
from costmodel.reporting import batch

pytestmark = pytest.mark.notebook
distributed = pytest.importorskip("distributed")

INDEX = ["index.csv", "index.html", "index.json"]
TINY = '''\
# %% [markdown]
# # Tiny
# %% tags=["parameters"]
memory = "16GiB"
hugepage = "2M"
vcpus = 16
pause = 0
die = False
# %%
import os
import signal
import time

from costmodel import parse

if die:
    os.kill(os.getppid(), signal.SIGKILL)  # the kernel's parent: the worker process
time.sleep(float(pause))
splits = parse.size(memory) // parse.size(hugepage)
print(splits)
# %% tags=["summary"]
display({"application/json": {"splits": float(splits), "merges": 1.0}}, raw=True)
'''


@pytest.fixture(scope="module")
def cluster():
    from costmodel import cluster as cluster_module

    with cluster_module.connect(workers=2, allowed_failures=1) as started:
        address = started.client.scheduler.address
        assert address.startswith("tcp://127.0.0.1:"), address
        yield started


@pytest.fixture
def notebook(tmp_path):
    path = tmp_path / "tiny.py"
    path.write_text(TINY)
    return str(path)


def _wait_for(condition, timeout=60.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s")


def _names(directory):
    return sorted(p.name for p in directory.iterdir())


def test_a_worker_killed_mid_report_fails_nothing_and_an_invalid_entry_fails_alone(cluster, notebook, tmp_path):
    client = cluster.client
    out = tmp_path / "out"
    entries = [{"memory": "16GiB"}, {"hugepage": "3M"}, {"memory": "64GiB", "hugepage": "1G", "vcpus": 4},
               {"memory": "32GiB", "pause": 4}]
    result = {}
    runner = threading.Thread(target=lambda: result.update(outcomes=reporting.render_batch(
        entries, out, formats="html", notebook=notebook, progress=False, scheduler=client)))
    runner.start()

    def holder():  # the worker running the slow report
        return next((worker for worker, keys in client.processing().items()
                     if any("memory_32GiB" in str(k) for k in keys)), None)

    worker = _wait_for(holder)
    pids = client.run(os.getpid)
    assert worker in pids and pids[worker] != os.getpid(), "a worker process of this cluster, not the test's"
    time.sleep(1.0)  # inside the notebook's sleep by now
    os.kill(pids[worker], signal.SIGKILL)
    runner.join(timeout=120)
    outcomes = result["outcomes"]

    assert [o.ok for o in outcomes] == [True, False, True, True], [o.error for o in outcomes]
    assert "entry 2: parameter hugepage: got '3M'" in outcomes[1].error
    assert [o.summary["splits"] for o in outcomes if o.ok] == [8192.0, 64.0, 16384.0]
    stems = ["tiny-memory_16GiB", "tiny-hugepage_1G-memory_64GiB-vcpus_4", "tiny-memory_32GiB-pause_4"]
    assert _names(out) == sorted(INDEX + [f"{s}.{k}" for s in stems for k in ("html", "ipynb")]), \
        "every report whole, nothing partial or hidden"
    index = (out / "index.html").read_text()
    assert "3 written, 1 failed" in index and "got &#x27;3M&#x27;" in index
    assert '<a href="tiny-memory_32GiB-pause_4.html">html</a>' in index


def test_a_report_that_kills_its_worker_every_time_fails_alone(cluster, notebook, tmp_path):
    out = tmp_path / "out"
    outcomes = reporting.render_batch([{"die": True}, {"memory": "8GiB"}], out, formats="html", notebook=notebook,
                                      progress=False, scheduler=cluster.client)
    assert outcomes[0].error == "the worker process rendering it died, in each of 2 tries"
    assert outcomes[1].ok and outcomes[1].summary["splits"] == 4096.0
    assert _names(out) == sorted(INDEX + ["tiny-memory_8GiB.html", "tiny-memory_8GiB.ipynb"])
    assert "the worker process rendering it died" in (out / "index.html").read_text()


def test_ctrl_c_keeps_what_finished_and_stops_what_runs(cluster, notebook, tmp_path):
    client = cluster.client
    out = tmp_path / "out"
    _wait_for(lambda: len(client.nthreads()) == 2)  # both workers back after the previous tests
    entries = [{"memory": "16GiB"}, {"memory": "8GiB", "pause": 120}, {"memory": "4GiB", "pause": 120}]

    seen = []

    def interrupt_after_the_first_report():
        try:
            _wait_for(lambda: (out / "tiny-memory_16GiB.html").exists())
            _wait_for(lambda: seen.append(client.processing()) or sum(map(len, seen[-1].values())) == 2)
            time.sleep(1.0)  # both slow reports sleeping in their notebooks
        finally:
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupter = threading.Thread(target=interrupt_after_the_first_report, daemon=True)
    interrupter.start()
    try:
        with pytest.raises(reporting.BatchInterrupted) as stopped:
            reporting.render_batch(entries, out, formats="html", notebook=notebook, progress=False, scheduler=client)
    finally:
        signal.signal(signal.SIGINT, previous)
    outcomes = stopped.value.outcomes
    assert sum(map(len, seen[-1].values())) == 2, seen[-1]
    assert isinstance(stopped.value, KeyboardInterrupt)
    assert [o.ok for o in outcomes] == [True, False, False]
    assert [o.error for o in outcomes[1:]] == [batch.INTERRUPTED] * 2
    assert _names(out) == sorted(INDEX + ["tiny-memory_16GiB.html", "tiny-memory_16GiB.ipynb"])
    index = (out / "index.html").read_text()
    assert index.count("not rendered: the batch was interrupted") == 2 and "1 written, 2 failed" in index
    # the cancelled reports were stopped on their kernels, not left to sleep out their 120 s
    _wait_for(lambda: sum(client.run(lambda dask_worker: dask_worker.state.executing_count).values()) == 0,
              timeout=30)
