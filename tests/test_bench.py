"""`python -m cconv.bench` runs from the installed package and prints its tables (no timing is
asserted: speed is measured by running the benchmark, never in tests)."""
import json
import math
import platform

import pytest

from cconv import bench


def row_lines(out, names):
    """The printed table line of each row name."""
    lines = {name: [line for line in out.splitlines() if line.startswith(name + " ")] for name in names}
    for name, found in lines.items():
        assert found, name
    return {name: found[0] for name, found in lines.items()}


def test_pool_and_epoch_tables_print_every_row(capsys):
    assert bench.main(["pool", "epoch", "--repeats", "1", "--samples", "64", "--batch-size", "32",
                       "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "thread" in out and "malloc" in out
    row_lines(out, ("max", "avg", "lp2", "lenet5", "mnist"))


@pytest.mark.parametrize("table", ["layers", "networks"])
def test_layer_tables_print_every_row(capsys, monkeypatch, table):
    # every row's geometry runs, on one image (the full batches take minutes under a sanitizer)
    shapes = bench.CONV_TABLES[table][0]
    one_image = [(name, (1,) + shape[1:]) for name, shape in shapes]
    monkeypatch.setitem(bench.CONV_TABLES, table, (one_image, bench.CONV_TABLES[table][1]))
    # without torch there is nothing to compare malloc settings for: one run in this process
    assert bench.main([table, "--repeats", "1", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "every table in this process (no PyTorch)" in out
    row_lines(out, [name for name, _ in shapes])


def test_rows_with_rectangular_filters_and_padding_time_torch_too(capsys):
    pytest.importorskip("torch")
    assert bench.main(["networks", "--repeats", "1", "--rows", "inc_1x7,inc_7x1", "--malloc", "inherit"]) == 0
    for line in row_lines(capsys.readouterr().out, ("inc_1x7", "inc_7x1")).values():
        assert all(math.isfinite(float(v)) and float(v) > 0 for v in line.split()[1:]), line


def test_json_child_mode_prints_the_times_of_each_row(capsys):
    assert bench.main(["conv", "--malloc", "inherit", "--json", "--rows", "lenet2,mnist_b",
                       "--repeats", "1", "--no-torch"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["table"] == "conv" and set(result["rows"]) == {"lenet2", "mnist_b"}
    for times in result["rows"].values():
        assert set(times) == {"fwd", "bwd"} and all(t > 0 for t in times.values())


def test_malloc_settings_are_child_processes_side_by_side(capsys, monkeypatch):
    pytest.importorskip("torch")
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the malloc settings are glibc's")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")  # replaced or removed in the children
    children = []
    run_child = bench.run_child
    monkeypatch.setattr(bench, "run_child", lambda *args: children.append(run_child(*args)) or children[-1])
    rows = ("down1x1_s2", "group1x1_g4")
    assert bench.main(["layers", "--repeats", "1", "--rows", ",".join(rows)]) == 0
    assert [child["glibc_tunables"] for child in children] == [bench.TUNED_GLIBC, None]
    out = capsys.readouterr().out
    assert "f+b x tuned" in out and "f+b x default" in out
    for line in row_lines(out, rows).values():
        ratios = [float(v) for v in line.split()[-4:]]  # fwd and f+b ratios, tuned then default
        assert all(math.isfinite(r) and r > 0 for r in ratios), line
    assert "malloc tuned (the headline): geometric mean" in out and "malloc default: geometric mean" in out


def test_unknown_table_or_row_is_an_error():
    with pytest.raises(SystemExit):
        bench.main(["nonsense"])
    with pytest.raises(SystemExit):
        bench.main(["layers", "--rows", "nonsense"])


def test_models_table_prints_its_rows_and_skips_networks_without_their_layers(capsys):
    assert bench.main(["models", "--rows", "lenet5,unet_tiny", "--repeats", "1", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "whole networks" in out
    assert "61,706" in row_lines(out, ["lenet5"])["lenet5"]
    unet = row_lines(out, ["unet_tiny"])["unet_tiny"]
    assert "481,762" in unet or "skipped: unet_tiny needs the layers Conv2DTranspose" in unet


def test_models_json_child_mode(capsys):
    assert bench.main(["models", "--malloc", "inherit", "--json", "--rows", "lenet5", "--repeats", "1",
                       "--no-torch"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["table"] == "models" and set(result["rows"]) == {"lenet5"}
    times = result["rows"]["lenet5"]
    assert times["params"] == 61706 and times["step"] > 0 and times["infer"] > 0


@pytest.mark.parametrize("name, count", [("lenet5", 61706), ("resnet20", 272474),
                                         ("mobilenet_v2", 700490), ("unet_tiny", 481762)])
def test_the_benchmarks_torch_twins_have_the_zoos_parameter_counts(name, count):
    torch = pytest.importorskip("torch")
    assert sum(p.numel() for p in bench.torch_zoo_network(name, torch).parameters()) == count
