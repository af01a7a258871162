"""Turns one benchmark run (bench/out/results-*.jsonl) into bench/RESULTS.md
and a plot. Figures are reported as ratios to the better baseline measured in
the same run, because this machine is noisy and only same-run ratios mean much.

    python bench/report.py RESULTS.jsonl RESULTS.md PLOT.png
"""

import json
import sys
from collections import defaultdict

results_path, markdown_path, plot_path = sys.argv[1:4]
rows = [json.loads(line) for line in open(results_path) if line.strip()]

# The matrix proper: small messages, nobody stalled (the stalled-listener
# run and its control, with 2 KiB messages, are reported on their own).
matrix = [
    r
    for r in rows
    if r["stalled"] == 0 and r["senders"] > 0 and r["size"] == 0 and r["label"] in ("banter", "deno", "node")
]
by_key = defaultdict(dict)
for r in matrix:
    by_key[(r["listeners"], r["senders"], r["mode"])][r["label"]] = r


def fmt(value, digits=0, suffix=""):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{suffix}"


def best_baseline(runs, field, better):
    values = [runs[b][field] for b in ("deno", "node") if b in runs and runs[b][field] is not None]
    return better(values) if values else None


def connect(r):
    if r is None:
        return "–"
    if r["connect_s"] is None:
        return f"no ({r['joined']:,} of {r['listeners'] + r['senders']:,} in 25 s)"
    return fmt(r["connect_s"], 2, " s")


lines = [
    "# Benchmark results",
    "",
    f"Raw data: `{results_path}`. Produced by `bench/run.sh`: each server pinned to CPU 0,",
    "`banter-bench` to CPU 1, all traffic on 127.0.0.1, one server process per run.",
    "Ratios compare Banter with the better of the two baselines in the same run.",
    "",
    "![delivered frames/s and p99 latency against listeners](results.png)",
    "",
    "## Fan-out",
    "",
    "C listeners, S senders; *20 msg/s* is the steady total rate, *max* sends as fast as each",
    "sender's window of 64 unacknowledged messages allows. A server that could not connect",
    "everyone within 25 s was not measured further.",
    "",
    "| C | S | mode | server | connect | delivered frames/s | × best baseline | p50 ms | p99 ms | p99 ÷ best baseline | p99.9 ms | max ms | lost | server CPU | generator busy |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
]
for key in sorted(by_key, key=lambda k: (k[2].startswith("max"), k[0], k[1])):
    runs = by_key[key]
    fps_best = best_baseline(runs, "frames_per_s", max)
    p99_best = best_baseline(runs, "p99_ms", min)
    for label in ("banter", "deno", "node"):
        r = runs.get(label)
        if r is None:
            continue
        ratio = p99_ratio = None
        if label == "banter":
            if fps_best and r["frames_per_s"]:
                ratio = r["frames_per_s"] / fps_best
            if p99_best and r["p99_ms"] is not None:
                p99_ratio = r["p99_ms"] / p99_best
        lines.append(
            f"| {key[0]:,} | {key[1]} | {key[2]} | {label} | {connect(r)} | {fmt(r['frames_per_s'])} "
            f"| {fmt(ratio, 1, '×')} | {fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} | {fmt(p99_ratio, 2)} "
            f"| {fmt(r['p999_ms'], 2)} | {fmt(r['max_ms'], 1)} | {'–' if r['connect_s'] is None else format(r['lost'], ',')} "
            f"| {fmt(r['server_cpu_pct'], 0, '%')} | {fmt(r.get('generator_busy_pct', r['generator_cpu_pct']), 0, '%')} |"
        )

storage = {
    label: [r for r in rows if r["label"] == label and r["frames_per_s"]]
    for label in ("banter-store", "banter-nostore")
}
if storage["banter-store"] and storage["banter-nostore"]:
    from statistics import median

    def messages_per_s(r):
        return r["frames_per_s"] / r["listeners"]

    store = median(messages_per_s(r) for r in storage["banter-store"])
    nostore = median(messages_per_s(r) for r in storage["banter-nostore"])
    lines += [
        "",
        "## What storage costs",
        "",
        "C = 1,000, S = 10, as fast as possible; SQLite (WAL, `synchronous = FULL`, one commit per",
        "batch) against the same server with `--storage off`, alternated three times.",
        "",
        "| storage | messages/s (each to 1,000 listeners) | p99 ms | lost |",
        "|---|---|---|---|",
    ]
    for label, name in (("banter-store", "sqlite"), ("banter-nostore", "off")):
        for r in storage[label]:
            lines.append(
                f"| {name} | {fmt(messages_per_s(r))} | {fmt(r['p99_ms'], 2)} | {r['lost']:,} |"
            )
    lines += [
        "",
        f"Median with storage ÷ median without: **{store / nostore:.0%}**.",
    ]

idle = [r for r in rows if r["senders"] == 0]
if idle:
    lines += ["", "## Idle memory", ""]
    for r in idle:
        lines.append(
            f"- {r['label']}: {r['listeners']:,} idle clients connected in {connect(r)}; server RSS "
            f"{fmt(r['server_rss_before_kib'] and r['server_rss_before_kib'] / 1024, 1)} MiB before, "
            f"{fmt(r['server_rss_idle_kib'] and r['server_rss_idle_kib'] / 1024, 1)} MiB after: "
            f"**{fmt(r['rss_per_client_kib'], 1)} KiB per client**."
        )

stalled = [r for r in rows if r["stalled"] > 0]
if stalled:
    lines += ["", "## Stalled listeners", ""]
    control = [r for r in rows if r["stalled"] == 0 and r["size"] > 0]
    for r in stalled + control:
        lines.append(
            f"- {r['label']}, C={r['listeners']:,}, {r['stalled']} listeners that never read, "
            f"{r['size']} B messages: {fmt(r['frames_per_s'])} frames/s, p99 {fmt(r['p99_ms'], 2)} ms, "
            f"lost {r['lost']:,}, peak RSS {fmt(r['server_peak_rss_kib'] and r['server_peak_rss_kib'] / 1024, 1)} MiB, "
            f"stalled sockets' close codes {r['stalled_close_codes']}."
        )

# bench/flood.sh writes its own section; keep it when rewriting the rest.
try:
    previous = open(markdown_path).read()
except FileNotFoundError:
    previous = ""
kept = previous.find("\n## Flooding\n")
if kept >= 0:
    end = previous.find("\n## ", kept + 1)
    lines += ["", previous[kept + 1 : end if end >= 0 else None].rstrip("\n")]

open(markdown_path, "w").write("\n".join(lines) + "\n")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib not available: no plot", file=sys.stderr)
    sys.exit(0)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
for label, color in (("banter", "#4f46e5"), ("deno", "#16a34a"), ("node", "#dc2626")):
    pts = sorted(
        (r["listeners"], r["frames_per_s"], r["p99_ms"])
        for r in matrix
        if r["label"] == label and r["senders"] == 1 and r["mode"].startswith("max") and r["frames_per_s"]
    )
    if pts:
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=color, label=label)
    steady = sorted(
        (r["listeners"], r["p99_ms"])
        for r in matrix
        if r["label"] == label and r["senders"] == 1 and not r["mode"].startswith("max") and r["p99_ms"]
    )
    if steady:
        ax2.plot([p[0] for p in steady], [p[1] for p in steady], "o-", color=color, label=label)
for ax in (ax1, ax2):
    ax.set_xscale("log")
    ax.set_xlabel("listeners (C)")
    ax.grid(True, alpha=0.3)
    ax.legend()
ax1.set_yscale("log")
ax1.set_title("Delivered frames/s, S=1, as fast as possible")
ax2.set_yscale("log")
ax2.set_title("p99 latency (ms), S=1, steady 20 msg/s")
fig.tight_layout()
fig.savefig(plot_path, dpi=110)
