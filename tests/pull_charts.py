"""Pull every chart `components/versions.py` pins into one folder, laid out as the chart
contract suite reads it: `<dir>/<chart>/Chart.yaml`, dependencies unpacked under `charts/`.

    python -m tests.pull_charts .charts      # or `make charts` (CHARTS_OUT=.charts)
    MESHSTACK_CHARTS_DIR=$PWD/.charts make test

Where no copy of the pinned charts sits beside the checkout (users' CI), this fetches the same
versions from the chart repositories with `helm pull`, which needs the `helm` binary (the suite
itself renders with helm-python-sdk). A chart already in the folder at its pinned version is
kept, so a second run pulls nothing; one at another version is replaced. The Gateway API CRDs
are a release manifest, not a chart, and are not fetched.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import yaml

from components import versions
from components.versions import ChartRef

Run = Callable[[Sequence[str]], None]
"""Runs one command and raises if it fails (a fake in the tests)."""


def pinned_charts() -> list[ChartRef]:
    """Every chart `components/versions.py` pins, once each, in the order it declares them."""
    found: dict[str, ChartRef] = {}
    for value in vars(versions).values():
        # One folder per chart name: two pins of one chart could not both be at hand.
        if isinstance(value, ChartRef) and found.setdefault(value.chart, value) != value:
            raise ValueError(
                f"components/versions.py pins {value.chart} twice: {found[value.chart]} and {value}"
            )
    return list(found.values())


def pull_command(ref: ChartRef, out_dir: Path) -> list[str]:
    """The `helm pull` that unpacks `ref` into `<out_dir>/<chart>`."""
    if ref.repo.startswith("oci://"):
        # An OCI registry has no index to search: the chart is addressed by its reference.
        source = [f"{ref.repo.rstrip('/')}/{ref.chart}"]
    else:
        source = [ref.chart, "--repo", ref.repo]
    return [
        "helm",
        "pull",
        *source,
        "--version",
        ref.version,
        "--untar",
        "--untardir",
        str(out_dir),
    ]


def chart_at(folder: Path) -> tuple[str, str] | None:
    """(name, version) of the chart in `folder`, or None when there is none."""
    chart_yaml = folder / "Chart.yaml"
    if not chart_yaml.is_file():
        return None
    meta = yaml.safe_load(chart_yaml.read_text()) or {}
    return str(meta.get("name", "")), str(meta.get("version", ""))


def plan(refs: Iterable[ChartRef], out_dir: Path) -> list[tuple[ChartRef, list[str]]]:
    """The charts missing from `out_dir` at their pinned version, each with its pull command."""
    return [
        (ref, pull_command(ref, out_dir))
        for ref in refs
        if chart_at(out_dir / ref.chart) != (ref.chart, ref.version)
    ]


def unpack_dependencies(chart_dir: Path) -> list[Path]:
    """Unpack every `charts/*.tgz` of the chart in place, recursively; the folders made.

    A published chart carries its dependencies as archives; the contract suite loads charts
    from folders, and an archive left beside its folder would load the dependency twice.
    """
    made: list[Path] = []
    deps = chart_dir / "charts"
    for archive in sorted(deps.glob("*.tgz")):
        with tarfile.open(archive) as tar:
            tops = sorted({member.name.split("/")[0] for member in tar.getmembers()})
            # `data`: no absolute paths, no escaping the folder, no device files or odd links.
            tar.extractall(deps, filter="data")
        archive.unlink()
        for top in tops:
            made.append(deps / top)
            made += unpack_dependencies(deps / top)
    return made


def run_command(command: Sequence[str]) -> None:
    print("+", shlex.join(command), flush=True)
    subprocess.run(list(command), check=True)


def pull(
    out_dir: Path, run: Run = run_command, refs: Sequence[ChartRef] | None = None
) -> list[ChartRef]:
    """Bring every pinned chart (or `refs`) into `out_dir`; the charts that had to be pulled."""
    refs = pinned_charts() if refs is None else refs
    out_dir.mkdir(parents=True, exist_ok=True)
    pulled = []
    for ref, command in plan(refs, out_dir):
        folder = out_dir / ref.chart
        if folder.exists():
            # `helm pull --untar` refuses to write over an existing folder; this one holds
            # another version (or no chart at all).
            shutil.rmtree(folder)
        run(command)
        found = chart_at(folder)
        if found != (ref.chart, ref.version):
            raise RuntimeError(
                f"`{shlex.join(command)}` left {found} in {folder}, not {ref.chart} {ref.version}"
            )
        pulled.append(ref)
    for ref in refs:
        unpack_dependencies(out_dir / ref.chart)
    return pulled


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pull the pinned charts into one folder.")
    parser.add_argument("out_dir", type=Path, help="where the charts go, e.g. .charts")
    args = parser.parse_args(argv)
    refs = pinned_charts()
    if plan(refs, args.out_dir) and shutil.which("helm") is None:
        print(
            "helm not found on PATH: `helm pull` fetches the pinned charts "
            "(https://helm.sh/docs/intro/install/)",
            file=sys.stderr,
        )
        return 1
    pulled = pull(args.out_dir, refs=refs)
    kept = len(refs) - len(pulled)
    print(f"{args.out_dir}: {len(pulled)} chart(s) pulled, {kept} already at their version")
    return 0


if __name__ == "__main__":
    sys.exit(main())
