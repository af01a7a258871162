"""Summarises a bench/flood.sh run: the measured clients' latency with and
without a flooder, the ratio issue 5 bounds (median p99 with the flood over
median p99 without, at most 2), and what the flooder achieved. Prints the
summary and writes it as the "## Flooding" section of RESULTS.md (replacing
that section, keeping the rest of the file).

    python3 bench/flood_report.py FLOOD.jsonl RESULTS.md

Exits 1 if the ratio is above 2 (or could not be computed).
"""

import json
import sys
from statistics import median

LIMIT = 2.0
HEADING = "## Flooding"

results_path, markdown_path = sys.argv[1:3]
rows = [json.loads(line) for line in open(results_path) if line.strip()]
baseline = [r for r in rows if r.get("flooders", 0) == 0]
# bench/flood.sh --diagnose adds flood runs under other labels.
plain = baseline[0]["label"] if baseline else "banter-limited"
flood = [r for r in rows if r.get("flooders", 0) > 0 and r["label"] == plain]
variants = {}
for r in rows:
    if r.get("flooders", 0) > 0 and r["label"] != plain:
        variants.setdefault(r["label"], []).append(r)


def fmt(value, digits=0, suffix=""):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{suffix}"


def med(runs, field):
    values = [r[field] for r in runs if r[field] is not None]
    return median(values) if values else None


def ends(f, code):
    return f["ends"].get(code, 0)


first = rows[0] if rows else {}
lines = [
    HEADING,
    "",
    f"Raw data: `{results_path}`. Produced by `bench/flood.sh`: Banter with the per-address",
    "limits lifted (every client comes from 127.0.0.1) and the per-socket message limit at its",
    f"defaults (10/s, burst 20); C = {first.get('listeners', '–')} listeners and "
    f"S = {first.get('senders', '–')} senders at {first.get('mode', '–')} in total "
    "(under each socket's limit), measured",
    "with and without one flooder that writes `send-message` frames as fast as its socket takes",
    "them, reads what comes back and reconnects as soon as it is closed. Runs alternate,",
    "baseline first. Latency is the measured clients' only. *Accepted*: flooder messages each",
    "listener received (what the server took from the flooder and broadcast); *other ends*: the",
    "flooder's connection ended without a close frame reaching it.",
    "",
    "| run | kind | p50 ms | p99 ms | p99.9 ms | max ms | lost | dropped | server CPU | generator busy "
    "| flood connections | accepted | refused | 1008 closes | other ends | frames written |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
]
for i, r in enumerate(rows, 1):
    f = r.get("flood")
    if f:
        other = {k: v for k, v in f["ends"].items() if k != "1008"}
        flood_cells = (
            f"{f['connections']:,} | {f['delivered_per_listener']:,.0f} | {f['refused']:,} | {ends(f, '1008'):,} "
            f"| {', '.join(f'{k} {v:,}' for k, v in other.items()) or '–'} | {f['frames_written']:,}"
        )
    else:
        flood_cells = "– | – | – | – | – | –"
    kind = "baseline" if not f else "flood" if r["label"] == plain else r["label"]
    lines.append(
        f"| {i} | {kind} | {fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} "
        f"| {fmt(r['p999_ms'], 2)} | {fmt(r['max_ms'], 1)} | {r['lost']:,} | {r['dropped_listeners']:,} "
        f"| {fmt(r['server_cpu_pct'], 0, '%')} | {fmt(r['generator_busy_pct'], 0, '%')} | {flood_cells} |"
    )

base_p99, flood_p99 = med(baseline, "p99_ms"), med(flood, "p99_ms")
ratio = flood_p99 / base_p99 if base_p99 and flood_p99 is not None else None
ok = ratio is not None and ratio <= LIMIT
lines += [
    "",
    f"Median without the flood: p50 {fmt(med(baseline, 'p50_ms'), 2)} ms, p99 {fmt(base_p99, 2)} ms "
    f"({len(baseline)} runs); with it: p50 {fmt(med(flood, 'p50_ms'), 2)} ms, p99 {fmt(flood_p99, 2)} ms "
    f"({len(flood)} runs).",
    "",
    f"**median(flood p99) ÷ median(baseline p99) = {fmt(ratio, 2)}** "
    f"({'within' if ok else 'over'} the bound of {LIMIT:g}).",
]


def flooder_summary(runs):
    phase = sum(r["message_phase_s"] for r in runs)
    total = {
        key: sum(r["flood"][key] for r in runs)
        for key in ("connections", "reconnects", "delivered_per_listener", "refused", "frames_written")
    }
    accepted = total["delivered_per_listener"]
    closes = sum(ends(r["flood"], "1008") for r in runs)
    failures = {}
    for r in runs:
        for key, n in r["flood"]["join_failures"].items():
            failures[key] = failures.get(key, 0) + n
    return (
        f"over {phase:.0f} s of flooding in {len(runs)} runs: {total['frames_written']:,} frames "
        f"written, {accepted:,.0f} accepted ({accepted / phase:,.0f}/s, each broadcast to "
        f"everyone: the measured traffic is {first.get('mode', '–')}), {total['refused']:,} refused with "
        f"\"slow down\", {closes:,} closes with 1008, {total['reconnects']:,} reconnects "
        f"({total['reconnects'] / phase:,.0f}/s)"
        + (
            "; failed reconnects: " + ", ".join(f"{k} ×{v:,}" for k, v in sorted(failures.items()))
            if failures
            else ""
        )
        + "."
    )


if flood:
    lines += ["", f"The flooder, {flooder_summary(flood)}"]
if variants:
    lines += [
        "",
        "Diagnostic flood runs (`bench/flood.sh --diagnose`; not in the ratio above):",
        "*frames-100*: the flooder stops writing after 100 frames a connection (the server reads 41",
        "before it closes), so the generator no longer spends its CPU writing bytes the server never",
        "reads; *handshakes-10/s*: the server's per-address handshake limit at its default rate, so a",
        "reconnecting flooder is paced as it would be in a deployment.",
        "",
    ]
    for label, runs in variants.items():
        p99 = med(runs, "p99_ms")
        vs = p99 / base_p99 if base_p99 and p99 is not None else None
        lines.append(
            f"- *{label}*: median p50 {fmt(med(runs, 'p50_ms'), 2)} ms, p99 {fmt(p99, 2)} ms "
            f"(**{fmt(vs, 2)}×** the baseline's), server CPU {fmt(med(runs, 'server_cpu_pct'), 0, '%')}, "
            f"generator busy {fmt(med(runs, 'generator_busy_pct'), 0, '%')}; the flooder, {flooder_summary(runs)}"
        )

section = "\n".join(lines) + "\n"
print(section)

try:
    text = open(markdown_path).read()
except FileNotFoundError:
    text = ""
start = text.find(HEADING + "\n")
if start < 0:
    text = (text.rstrip("\n") + "\n\n" if text else "") + section
else:
    end = text.find("\n## ", start + len(HEADING))
    rest = text[end + 1 :] if end >= 0 else ""
    text = text[:start] + section + ("\n" + rest if rest else "")
open(markdown_path, "w").write(text)

sys.exit(0 if ok else 1)
