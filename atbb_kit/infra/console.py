"""Human-facing summaries (rich tables) printed at the end of long tasks."""

from __future__ import annotations

from collections.abc import Sequence


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def image_summary(
    tags: Sequence[str], image_id: str, size: int, base_size: int | None, budget: int, seconds: float
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="image built", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for i, tag in enumerate(tags):
        table.add_row("tag" if i == 0 else "", tag)
    table.add_row("id", image_id)
    table.add_row("size", f"{mb(size)} ({size / budget:.0%} of the {mb(budget)} budget)")
    if base_size is not None:
        table.add_row("added over base", mb(size - base_size))
    table.add_row("build time", f"{seconds:.1f} s")
    verdict = "[green]within budget[/green]" if size <= budget else "[red]OVER BUDGET[/red]"
    table.add_row("budget", verdict)
    Console().print(table)
