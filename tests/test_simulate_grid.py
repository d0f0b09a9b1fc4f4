"""Simulator grids on Dask (costmodel.simulate_grid): kill and resume, the same numbers as a serial run
whatever the chunking, the chunk plan, and the CLI. One 2-worker local cluster on 127.0.0.1 for the module."""

import pickle
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("distributed")

import pyarrow.parquet as pq  # noqa: E402

from costmodel import simulate_grid  # noqa: E402
from costmodel.cli import main  # noqa: E402
from costmodel.shape import VmShape  # noqa: E402
from costmodel.simulate import Parameters  # noqa: E402
from costmodel.units import GiB, TiB  # noqa: E402

SEEDS = 30
#: 24 shapes: 4 GiB–4 TiB, 8 and 64 vCPUs, 2 MiB and 1 GiB pages, one or two NUMA nodes.
SHAPES = [VmShape(memory_bytes=m, vcpus=v, hugepage_bytes=h, numa_nodes=n)
          for m in (4 * GiB, 64 * GiB, 4 * TiB) for v in (8, 64) for h in (2 * 2**20, GiB) for n in (1, 2)]


@pytest.fixture(scope="module")
def cluster():
    from costmodel import cluster as cluster_module

    with cluster_module.connect(workers=2) as started:
        address = started.client.scheduler.address
        assert address.startswith("tcp://127.0.0.1:"), address
        yield started


@pytest.fixture(scope="module")
def serial():
    """The grid simulated in this process, no cluster: one row per shape."""
    return simulate_grid.simulate_chunk(SHAPES, SEEDS, 0, False, Parameters().to_dict())


def _rows(path):
    return pq.read_table(path).to_pylist()


KILLED = """
import pickle, sys
from costmodel import simulate_grid
shapes, seeds = pickle.loads(open(sys.argv[3], "rb").read())
simulate_grid.run_grid(shapes, sys.argv[1], seeds, scheduler=sys.argv[2], chunk=1, progress=False)
"""


def test_a_grid_killed_mid_run_resumes_to_the_serial_runs_numbers(cluster, serial, tmp_path):
    out = tmp_path / "grid.parquet"
    parts = tmp_path / "grid.parquet.parts"
    grid = tmp_path / "grid.pickle"
    grid.write_bytes(pickle.dumps((SHAPES, SEEDS)))
    process = subprocess.Popen([sys.executable, "-c", KILLED, str(out), cluster.client.scheduler.address, str(grid)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(parts.glob("*.parquet"))) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    _, err = process.communicate()
    assert process.returncode == -signal.SIGKILL, err.decode()[-2000:]
    written = sorted(parts.glob("*.parquet"))
    assert not out.exists() and 3 <= len(written) < len(SHAPES)  # killed mid-grid, chunks of one shape
    finished = {row[simulate_grid.SHAPE_KEY] for path in written for row in _rows(path)}

    # the resumed run, with other chunks: the finished shapes are taken from the parts, the rest simulated
    simulate_grid.run_grid(SHAPES, out, SEEDS, scheduler=cluster.client, chunk=5, progress=False)
    assert _rows(out) == serial  # every number, exactly, in shape order
    assert not parts.exists()
    assert len(finished) == len(written)


def test_finished_shapes_are_taken_from_the_parts_not_simulated_again(cluster, serial, tmp_path):
    out = tmp_path / "grid.parquet"
    parts = tmp_path / "grid.parquet.parts"
    parts.mkdir()
    import pyarrow as pa

    run = simulate_grid.run_key(SEEDS, 0, False, Parameters().to_dict())
    marked = [{simulate_grid.SHAPE_KEY: simulate_grid.shape_key(SHAPES[i]), **serial[i], "splits": -1.0}
              for i in (0, 7)]  # "finished" earlier, with a value no simulation gives
    pq.write_table(pa.Table.from_pylist(marked), parts / f"{run}.earlier.parquet")
    stale = [{simulate_grid.SHAPE_KEY: simulate_grid.shape_key(SHAPES[1]), **serial[1], "splits": -2.0}]
    pq.write_table(pa.Table.from_pylist(stale), parts / "otherseeds.earlier.parquet")  # another run's: ignored
    simulate_grid.run_grid(SHAPES, out, SEEDS, scheduler=cluster.client, progress=False)
    rows = _rows(out)
    assert [r["splits"] for r in rows[:2]] == [-1.0, serial[1]["splits"]] and rows[7]["splits"] == -1.0
    assert [r for i, r in enumerate(rows) if i not in (0, 7)] == [r for i, r in enumerate(serial) if i not in (0, 7)]


@pytest.mark.parametrize("chunk", [None, 1, 7, 100])
def test_the_chunk_size_changes_no_number(cluster, serial, tmp_path, chunk):
    out = tmp_path / "grid.parquet"
    simulate_grid.run_grid(SHAPES, out, SEEDS, scheduler=cluster.client, chunk=chunk, progress=False)
    assert _rows(out) == serial


def test_a_finished_grid_is_written_without_contacting_the_scheduler(serial, tmp_path):
    import pyarrow as pa

    out = tmp_path / "grid.parquet"
    parts = tmp_path / "grid.parquet.parts"
    parts.mkdir()
    run = simulate_grid.run_key(SEEDS, 0, False, Parameters().to_dict())
    rows = [{simulate_grid.SHAPE_KEY: simulate_grid.shape_key(s), **r} for s, r in zip(SHAPES, serial)]
    pq.write_table(pa.Table.from_pylist(rows[:10]), parts / f"{run}.a.parquet")
    pq.write_table(pa.Table.from_pylist(rows[10:]), parts / f"{run}.b.parquet")
    simulate_grid.run_grid(SHAPES, out, SEEDS, scheduler="tcp://127.0.0.1:9", progress=False)  # unreachable
    assert _rows(out) == serial


def test_the_plan_covers_every_shape_once_in_order_big_tasks_first():
    costs = [100.0] * 1000
    chunks = simulate_grid.plan(costs, threads=2, smallest=400, largest=20_000)
    assert [i for c in chunks for i in c] == list(range(1000))
    worth = [100.0 * len(c) for c in chunks]
    assert worth[0] == 20_000  # a quarter of the boots (2 threads, guided 2) is more than the largest task
    assert worth[2] == 15_000  # a quarter of the 60,000 left
    assert worth == sorted(worth, reverse=True) and min(worth) == 400 and len(chunks) < 60
    one = simulate_grid.plan([5e6, 1.0, 1.0], threads=2)  # a shape costlier than the largest task is alone
    assert [list(c) for c in one] == [[0], [1, 2]]


def test_the_cli_runs_a_grid_on_an_existing_scheduler(cluster, tmp_path, capsys):
    sweep = tmp_path / "shapes.yaml"
    sweep.write_text("- {vcpus: [4, 8], memory: 4GiB, hugepage: [2M, 1G]}\n")
    out = tmp_path / "results.parquet"
    status = main(["simulate", "--grid", str(sweep), "--seeds", "3", "--platform", "snp,tdx",
                   "--scheduler", cluster.client.scheduler.address, "-o", str(out)])
    captured = capsys.readouterr()
    rows = _rows(out)
    assert status == 0 and str(out) in captured.out and "shapes: 100%" in captured.err and len(rows) == 8
    assert {"splits", "splits_p05", "splits_p95", "merges", "splits_swiotlb", "seeds"} <= set(rows[0])
    assert {r["platform"] for r in rows} == {"snp", "tdx"} and {r["seeds"] for r in rows} == {3}
    assert not (tmp_path / "results.parquet.parts").exists()  # joined and cleaned up
