"""``moodtune report``'s views of a satisfaction report: a rich table and a PNG chart.

matplotlib is imported only by ``plot_report`` (it comes with the ``train`` extra).
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from moodtune.feedback.report import GROUPS, ReportError, SatisfactionReport
from moodtune.labels import KOREAN


def _key_label(group: str, key: str) -> str:
    return f"{KOREAN[key]} ({key})" if group == "dominant" and key in KOREAN else key


def report_table(report: SatisfactionReport) -> Table:
    """The rates as a rich table: group, key, n, satisfied, rate, 95% interval."""
    table = Table(title="satisfaction (latest answer per song of a recommendation)", title_justify="left")
    table.add_column("group")
    table.add_column("")
    for name in ("n", "satisfied", "rate"):
        table.add_column(name, justify="right")
    table.add_column("95% CI (Wilson)", justify="right")
    for group, title in GROUPS:
        for i, r in enumerate(report.group(group)):
            table.add_row(
                title if i == 0 else "",
                _key_label(group, r.key),
                str(r.n),
                str(r.satisfied),
                f"{r.rate:.1%}",
                f"{r.low:.1%} – {r.high:.1%}",
                end_section=i == len(report.group(group)) - 1,
            )
    return table


def plot_report(report: SatisfactionReport, path: str | Path) -> Path:
    """Write a PNG: one panel per group, bars at the rate with the 95% interval as error bars."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt
    except ImportError:
        raise ReportError(
            "the PNG chart needs matplotlib, which the runtime does not install: "
            "pip install 'moodtune[train]' (or pip install matplotlib), or leave out --png"
        ) from None
    groups = [(g, t) for g, t in GROUPS if report.group(g)]
    widths = [max(1, len(report.group(g))) for g, _ in groups]
    fig, axes = plt.subplots(
        1,
        len(groups),
        figsize=(2.0 + 0.9 * sum(widths), 4.0),
        sharey=True,
        width_ratios=widths,
        squeeze=False,
    )
    for ax, (group, title) in zip(axes[0], groups, strict=True):
        rates = report.group(group)
        x = list(range(len(rates)))
        values = [r.rate for r in rates]
        errors = [[r.rate - r.low for r in rates], [r.high - r.rate for r in rates]]
        ax.bar(x, values, yerr=errors, capsize=4, color="#4c72b0", alpha=0.85)
        rotated = len(rates) > 2
        ax.set_xticks(
            x, [r.key for r in rates], rotation=30 if rotated else 0, ha="right" if rotated else "center"
        )
        for xi, r in zip(x, rates, strict=True):
            ax.annotate(f"n={r.n}", (xi, 0.02), ha="center", fontsize=8, color="white")
        ax.set_title(title)
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("satisfaction rate (95% CI)")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
