"""`python -m cconv.bench` runs from the installed package and prints its tables (no timing is
asserted: speed is measured by running the benchmark, never in tests)."""
import pytest

from cconv import bench


def test_pool_and_epoch_tables_print_every_row(capsys):
    assert bench.main(["pool", "epoch", "--repeats", "1", "--samples", "64", "--batch-size", "32",
                       "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "thread" in out and "malloc" in out
    for row in ("max", "avg", "lp2", "lenet5", "mnist"):
        assert any(line.startswith(row + " ") for line in out.splitlines()), row


def test_unknown_table_is_an_error():
    with pytest.raises(SystemExit):
        bench.main(["nonsense"])
