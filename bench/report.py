"""Turns one benchmark run (bench/out/results-*.jsonl) into bench/RESULTS.md
and a plot. Banter is compared with each baseline as ratios to that baseline
measured in the same run, because this machine is noisy and only same-run
ratios mean much.

    python bench/report.py RESULTS.jsonl RESULTS.md PLOT.png
"""

import json
import sys
from collections import defaultdict

results_path, markdown_path, plot_path = sys.argv[1:4]
rows = [json.loads(line) for line in open(results_path) if line.strip()]

# The tutorial chat as Bun, Deno and Node's docs teach it, and the one-thread
# minimal server that does only the kernel's share (one frame encoded per
# message, one write per socket): how far Banter is from what people write,
# and from what the kernel costs.
BASELINES = ("bun", "deno", "node", "minimal")
SERVERS = ("banter",) + BASELINES

# The matrix proper: small messages, nobody stalled (the stalled-listener
# run and its control, with 2 KiB messages, are reported on their own).
matrix = [
    r
    for r in rows
    if r["stalled"] == 0 and r["senders"] > 0 and r["size"] == 0 and r["label"] in SERVERS
]
by_key = defaultdict(dict)
for r in matrix:
    by_key[(r["listeners"], r["senders"], r["mode"])][r["label"]] = r


def fmt(value, digits=0, suffix=""):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{suffix}"


def cpu_us_per_frame(r):
    """Server CPU per delivered frame, in µs: what a delivery costs the
    server, whatever rate the run was held to (steady runs all deliver the
    same frames/s, so there this is the figure that tells them apart)."""
    if r is None or r.get("server_cpu_pct") is None or not r.get("received"):
        return None
    return r["server_cpu_pct"] / 100 * r["message_phase_s"] / r["received"] * 1e6


def ratio(a, b):
    return a / b if a is not None and b else None


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
    "Banter is compared with each baseline in the same run (see *Banter against each baseline*).",
    "",
    "![delivered frames/s, p99 latency and server CPU per frame against listeners](results.png)",
    "",
    "## Fan-out",
    "",
    "C listeners, S senders; *20 msg/s* is the steady total rate, *max* sends as fast as each",
    "sender's window of 64 unacknowledged messages allows. A server that could not connect",
    "everyone within 25 s was not measured further. *host steal* is the share of the run's time",
    "the hypervisor gave this machine's CPUs to others (`/proc/stat`): a run with much of it is",
    "slower for every server alike, so compare servers only within runs of similar steal.",
    "",
    "| C | S | mode | server | connect | delivered frames/s | p50 ms | p99 ms | p99.9 ms | max ms | lost | server CPU | CPU µs/frame | generator busy | host steal |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
]
ordered_keys = sorted(by_key, key=lambda k: (k[2].startswith("max"), k[0], k[1]))
for key in ordered_keys:
    runs = by_key[key]
    for label in SERVERS:
        r = runs.get(label)
        if r is None:
            continue
        lines.append(
            f"| {key[0]:,} | {key[1]} | {key[2]} | {label} | {connect(r)} | {fmt(r['frames_per_s'])} "
            f"| {fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} "
            f"| {fmt(r['p999_ms'], 2)} | {fmt(r['max_ms'], 1)} | {'–' if r['connect_s'] is None else format(r['lost'], ',')} "
            f"| {fmt(r['server_cpu_pct'], 0, '%')} | {fmt(cpu_us_per_frame(r), 2)} "
            f"| {fmt(r.get('generator_busy_pct', r['generator_cpu_pct']), 0, '%')} "
            f"| {fmt(r.get('steal_pct'), 1, '%')} |"
        )

# One row per baseline that was measured beside Banter: frames/s above 1×,
# p99 and CPU per frame below 1 are Banter ahead. A baseline that could not
# connect everyone has no figures to divide by.
lines += [
    "",
    "## Banter against each baseline",
    "",
    "Banter's figure divided by the baseline's, same C, S and mode, same run: frames/s above",
    "1× and p99 or CPU per delivered frame below 1× are Banter ahead. *minimal* does only the",
    "kernel's share: one thread, each message framed once and written to every socket with one",
    "`write` each, no storage, no presence but the joiner's list. At a steady rate that is the",
    "floor; as fast as possible, a server that puts several frames in one write can beat it.",
    "",
    "| C | S | mode | baseline | frames/s × | p99 × | CPU/frame × |",
    "|---|---|---|---|---|---|---|",
]
for key in ordered_keys:
    runs = by_key[key]
    banter = runs.get("banter")
    if banter is None:
        continue
    for label in BASELINES:
        r = runs.get(label)
        if r is None:
            continue
        if r["connect_s"] is None:
            cells = [f"{label} did not connect everyone", "–", "–"]
        else:
            cells = [
                fmt(ratio(banter["frames_per_s"], r["frames_per_s"]), 2, "×"),
                fmt(ratio(banter["p99_ms"], r["p99_ms"]), 2, "×"),
                fmt(ratio(cpu_us_per_frame(banter), cpu_us_per_frame(r)), 2, "×"),
            ]
        lines.append(f"| {key[0]:,} | {key[1]} | {key[2]} | {label} | " + " | ".join(cells) + " |")

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

# Keep every section this script does not write: bench/flood.sh's, and the
# write-ups of earlier runs (each issue's before/after tables), so a new run
# of the matrix replaces only its own tables.
generated = {line[3:] for line in lines if line.startswith("## ")}
try:
    previous = open(markdown_path).read()
except FileNotFoundError:
    previous = ""
for section in previous.split("\n## ")[1:]:
    if section.split("\n", 1)[0] not in generated:
        lines += ["", "## " + section.rstrip("\n")]

open(markdown_path, "w").write("\n".join(lines) + "\n")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib not available: no plot", file=sys.stderr)
    sys.exit(0)

fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 4.4))
# The floor is dashed: a bound to read Banter against, not a contender.
STYLE = {
    "banter": ("#4f46e5", "o-"),
    "bun": ("#d97706", "o-"),
    "deno": ("#16a34a", "o-"),
    "node": ("#dc2626", "o-"),
    "minimal": ("#6b7280", "s--"),
}
for label in SERVERS:
    color, style = STYLE[label]
    fast = sorted(
        (r["listeners"], r["frames_per_s"], cpu_us_per_frame(r))
        for r in matrix
        if r["label"] == label and r["senders"] == 1 and r["mode"].startswith("max") and r["frames_per_s"]
    )
    if fast:
        ax1.plot([p[0] for p in fast], [p[1] for p in fast], style, color=color, label=label)
    steady = sorted(
        (r["listeners"], r["p99_ms"])
        for r in matrix
        if r["label"] == label and r["senders"] == 1 and not r["mode"].startswith("max") and r["p99_ms"]
    )
    if steady:
        ax2.plot([p[0] for p in steady], [p[1] for p in steady], style, color=color, label=label)
    cpu = [p for p in fast if p[2] is not None]
    if cpu:
        ax3.plot([p[0] for p in cpu], [p[2] for p in cpu], style, color=color, label=label)
for ax in (ax1, ax2, ax3):
    ax.set_xscale("log")
    ax.set_xlabel("listeners (C)")
    ax.grid(True, alpha=0.3)
    if ax.get_lines():
        ax.legend()
ax1.set_yscale("log")
ax1.set_title("Delivered frames/s, S=1, as fast as possible")
ax2.set_yscale("log")
ax2.set_title("p99 latency (ms), S=1, steady 20 msg/s")
ax3.set_yscale("log")
ax3.set_title("Server CPU µs per delivered frame, S=1, max rate")
fig.tight_layout()
fig.savefig(plot_path, dpi=110)
