"""The one console: every line a task shows a person goes through here.

The rule every task keeps (as `inv tags` did first): progress, warnings and errors go to stderr, so a
task's stdout holds only its results and can be piped (`inv tags --format json | jq`). Summaries and
tables are results: stdout.

rich is imported only when a table or a spinner is drawn, so importing this module costs `inv --list`
nothing. When stderr is a terminal, progress lines are printed through rich so that a line written while a
spinner runs lands above the spinner instead of through it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, TextIO

# rich wraps at 80 columns when the stream is not a terminal (CI logs); tables are wider than that. Off a
# terminal a table is laid out as wide as its longest row needs (at least this), so no cell wraps and every
# row stays one greppable line.
LOG_WIDTH = 120


@dataclass(frozen=True)
class Column:
    header: str
    justify: str = "left"
    style: str | None = None
    # Cells of a column that holds tool output are escaped: "[expression]" is not rich markup.
    markup: bool = False
    no_wrap: bool = False


class Console:
    """Progress to `progress_stream` (stderr), results to `result_stream` (stdout)."""

    def __init__(self, progress_stream: TextIO | None = None, result_stream: TextIO | None = None) -> None:
        self.progress_stream = progress_stream
        self.result_stream = result_stream
        self._rich_progress: Any = None

    # Streams are looked up when used, not when the console is made, so pytest's capsys and a task's
    # redirected sys.stderr both see the output.
    @property
    def err(self) -> TextIO:
        return self.progress_stream or sys.stderr

    @property
    def out(self) -> TextIO:
        return self.result_stream or sys.stdout

    def _progress_console(self) -> Any:
        if not getattr(self.err, "isatty", lambda: False)():
            return None
        if self._rich_progress is None or self._rich_progress.file is not self.err:
            from rich.console import Console as RichConsole

            self._rich_progress = RichConsole(file=self.err)
        return self._rich_progress

    def say(self, text: str) -> None:
        """A progress line (stderr)."""
        rich = self._progress_console()
        if rich is not None:
            rich.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=self.err, flush=True)

    def warn(self, text: str) -> None:
        """A warning line (stderr), prefixed `warning: `."""
        self.say(f"warning: {text}")

    def error(self, text: str) -> None:
        """An error line (stderr), prefixed `error: `; the error boundary's only output."""
        print(f"error: {text}", file=self.err, flush=True)

    def result(self, text: str = "") -> None:
        """A result line (stdout): what a script piping the task reads."""
        print(text, file=self.out, flush=True)

    def status(self, text: str) -> Any:
        """A spinner on a terminal while a long step runs; nothing in a log."""
        rich = self._progress_console()
        return nullcontext() if rich is None else rich.status(text)

    def table(
        self,
        title: str,
        columns: Sequence[Column | str],
        rows: Sequence[Sequence[str]],
        *,
        caption: str | None = None,
        show_header: bool = True,
        stream: TextIO | None = None,
        width: int | None = None,
    ) -> None:
        """A summary table (stdout unless `stream` says otherwise; `width` overrides the layout width)."""
        from rich.console import Console as RichConsole
        from rich.markup import escape
        from rich.table import Table

        cols = [c if isinstance(c, Column) else Column(c) for c in columns]
        table = Table(title=title, caption=caption, title_justify="left", show_header=show_header)
        for c in cols:
            table.add_column(
                c.header,
                justify=c.justify,  # type: ignore[arg-type]
                style=c.style,
                overflow="fold",
                no_wrap=c.no_wrap,
            )
        for row in rows:
            table.add_row(*(cell if col.markup else escape(cell) for col, cell in zip(cols, row, strict=True)))
        target = stream or self.out
        rich = RichConsole(file=target, width=width)
        if width is None and not rich.is_terminal:
            # Each cell plus its padding and border (3 characters a column, 1 more for the last border).
            needed = sum(max((len(str(r[i])) for r in rows), default=0) for i in range(len(cols))) + 3 * len(cols) + 1
            rich = RichConsole(file=target, width=max(LOG_WIDTH, needed))
        rich.print(table)


# The process-wide console; tests make their own with explicit streams.
console = Console()
say = console.say
warn = console.warn
result = console.result


@contextmanager
def step(text: str) -> Iterator[None]:
    """Say what starts, spin while it runs (on a terminal)."""
    console.say(text)
    with console.status(text):
        yield


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def image_summary(
    tags: Sequence[str], image_id: str, size: int, base_size: int | None, budget: int, seconds: float
) -> None:
    rows = [("tag" if i == 0 else "", tag) for i, tag in enumerate(tags)]
    rows += [("id", image_id), ("size", f"{mb(size)} ({size / budget:.0%} of the {mb(budget)} budget)")]
    if base_size is not None:
        rows.append(("added over base", mb(size - base_size)))
    rows.append(("build time", f"{seconds:.1f} s"))
    rows.append(("budget", "[green]within budget[/green]" if size <= budget else "[red]OVER BUDGET[/red]"))
    console.table("image built", [Column("what", style="bold"), Column("value", markup=True)], rows, show_header=False)
