"""docs/benchmarks.md: one table of figures against their targets, then what each one measures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    name: str
    target: str  # as a person reads it, e.g. ">= 0.5x bare COPY"
    measured: str
    ratio: str  # measured / target where that means something, else "-"
    passed: bool | None  # None: a reference figure with no target of its own
    about: str  # what exactly is measured, and against which baseline
    details: list[str] = field(default_factory=list)  # extra lines under the paragraph (profile, runs)


def verdict(passed: bool | None) -> str:
    return {True: "pass", False: "**FAIL**", None: "reference"}[passed]


def render(figures: list[Figure], machine: str, when: str, command: str, notes: list[str]) -> str:
    out = [
        "# Benchmarks",
        "",
        f"Written by `{command}` on {when}. Machine: {machine}.",
        "Every timed figure is the median of repeated runs in the same benchmark run as its baseline;",
        "these machines are shared and noisy, so compare ratios rather than absolute rows/s across runs.",
        "",
        "| figure | target | measured | ratio | result | machine | date | command |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for f in figures:
        out.append(
            f"| {f.name} | {f.target} | {f.measured} | {f.ratio} | {verdict(f.passed)} | {machine} | {when} "
            f"| `{command}` |"
        )
    out.append("")
    for f in figures:
        out += [f"## {f.name}", "", f.about, ""]
        if f.details:
            out += [*f.details, ""]
    if notes:
        out += ["## Notes", ""]
        for note in notes:
            out += [note, ""]
    return "\n".join(out)


def write_report(path: Path, figures: list[Figure], machine: str, when: str, command: str, notes: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(figures, machine, when, command, notes), encoding="utf-8")


def failed(figures: list[Figure]) -> list[Figure]:
    return [f for f in figures if f.passed is False]
