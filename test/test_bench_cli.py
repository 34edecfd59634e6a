"""`warpd bench`: lists the whole suite, runs a chosen benchmark and records the run at the top of the file."""
import pytest
from conftest import REPO

from warpd_ros.cli import main as warpd
from warpd_ros.testing.benchmarks_md import HEADER, update_section

pytestmark = pytest.mark.once  # the bench command line: no ROS node involved

NOT_BENCHMARKS = {"__init__", "__main__", "report"}


def test_list_names_every_benchmark_script(capfd):
    assert warpd(["bench", "--list"]) == 0
    lines = capfd.readouterr().out.splitlines()
    listed = {line.split()[0] for line in lines[:lines.index("")]}  # the table, up to the quick commands
    quick = {line.split()[2].removeprefix("bench.") for line in lines if line.startswith("  python -m bench.")}
    scripts = {p.stem for p in (REPO / "bench").glob("*.py")} - NOT_BENCHMARKS
    assert listed == quick == scripts  # a new bench/ script must join the suite


def test_quick_run_of_one_benchmark_writes_its_section_and_the_run_summary(tmp_path, capfd):
    out = tmp_path / "B.md"
    assert warpd(["bench", "--quick", "--only", "conversion", "--out", str(out)]) == 0
    assert "[1/1] conversion: done" in capfd.readouterr().out
    text = out.read_text()
    assert text.startswith(HEADER)
    summary = text.index("<!-- bench:bench_run:start -->")
    assert summary < text.index("<!-- bench:conversion:start -->")  # the run summary sits on top
    assert "`warpd bench --quick` on " in text and "| `conversion` |" in text and "| finished |" in text
    assert "| policy 39-256-256-4 (77,060 weights) | numpy -> msg |" in text
    assert "policy_forward" not in text


def test_update_section_at_top_goes_under_the_header_once(tmp_path):
    path = tmp_path / "B.md"
    update_section("a", "section A", path)
    update_section("run", "run 1", path, at_top=True)
    update_section("run", "run 2", path, at_top=True)
    text = path.read_text()
    assert text.startswith(HEADER) and "run 1" not in text and text.count("run 2") == 1
    assert text.index("run 2") < text.index("section A")


@pytest.mark.parametrize("args, message", [
    (["--only", "conversoin"], "unknown benchmark(s) conversoin"),
    (["--skip", "conversion,conversion"], "distinct"),
])
def test_bad_names_are_usage_errors(capfd, args, message):
    with pytest.raises(SystemExit) as exit_info:
        warpd(["bench", *args])
    assert exit_info.value.code == 2 and message in capfd.readouterr().err


def test_only_and_skip_together_is_an_error(capsys):
    assert warpd(["bench", "--only", "conversion", "--skip", "experts"]) == 2
    assert "error: --only and --skip do not go together" in capsys.readouterr().err
