"""report - what bench/run prints, writes and draws from its results.

  summarize(scenario_result)   medians per replicator and ratios against native
  table(results, machine)      the text table (also pasted into bench/README.md)
  write_json(path, document)   every raw number
  plots(results, dir)          PNG charts through gnuplot (gnuplot-nox, pngcairo)

Catch-up (scenarios that measure "catch_up": the consumer paused during a
backlog of writes) and lag (scenarios that measure "lag": a steady write
load) get their own tables below the full-sync one.
"""

import json
import os
import shutil
import statistics
import subprocess
import tempfile

def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(scenario):
    """Adds scenario["summary"]: per replicator, medians (and min/max of the
    full-sync time) over its runs, and ratios to native's medians."""
    by_rep = {}
    for run in scenario.get("runs", []):
        by_rep.setdefault(run["replicator"], []).append(run)
    summary = {}
    for name, runs in by_rep.items():
        ok = [r for r in runs if r.get("full_sync_s") is not None and not r.get("error")]
        times = [r["full_sync_s"] for r in ok]
        summary[name] = {
            "runs": len(runs),
            "runs_ok": len(ok),
            "digest_ok": all(r.get("digest_ok") for r in runs) and bool(runs),
            "full_sync_s": _median(times),
            "full_sync_s_min": min(times) if times else None,
            "full_sync_s_max": max(times) if times else None,
            "cpu_s": _median(r.get("cpu_s") for r in ok),
            "ns_per_key": _median(r.get("ns_per_key") for r in ok),
            "ns_per_element": _median(r.get("ns_per_element") for r in ok),
            "cpu_total_s": _median(r.get("cpu_total_s") for r in ok),
            "peak_rss_kb": max((r["peak_rss_kb"] for r in ok if r.get("peak_rss_kb")), default=None),
            "dest_peak_rss_kb": max((r["dest_peak_rss_kb"] for r in ok
                                     if r.get("dest_peak_rss_kb")), default=None),
            "other_cpu_s": _median(r.get("other_cpu_s") for r in ok),
            "other_cores": _median(r.get("other_cores") for r in ok),
            # catch-up scenarios: run["catch_up"]; steady load: run["lag"]
            "catch_up_rate": _median((r.get("catch_up") or {}).get("rate_cmd_s") for r in ok),
            "catch_up_s": _median(_cu(r, "seconds") for r in ok),
            "catch_up_s_min": min((_cu(r, "seconds") for r in ok if _cu(r, "seconds")),
                                  default=None),
            "catch_up_s_max": max((_cu(r, "seconds") for r in ok if _cu(r, "seconds")),
                                  default=None),
            "catch_up_s_lower_bound": _median(_cu(r, "seconds_lower_bound") for r in ok),
            "catch_up_commands": _median(_cu(r, "commands") for r in ok),
            "catch_up_cpu_s": _median(_cu(r, "cpu_s") for r in ok),
            "catch_up_ns_per_command": _median(_cu(r, "ns_per_command") for r in ok),
            "catch_up_cpu_total_ns_per_command": _median(
                _cu(r, "cpu_total_s") / _cu(r, "commands") * 1e9
                if _cu(r, "cpu_total_s") is not None else None for r in ok),
            "lag_p50_ms": _median((r.get("lag") or {}).get("p50_ms") for r in ok),
            "lag_p99_ms": _median((r.get("lag") or {}).get("p99_ms") for r in ok),
            "lag_p99_ms_min": min((_lg(r, "p99_ms") for r in ok if _lg(r, "p99_ms") is not None),
                                  default=None),
            "lag_p99_ms_max": max((_lg(r, "p99_ms") for r in ok if _lg(r, "p99_ms") is not None),
                                  default=None),
            "lag_max_ms": max((_lg(r, "max_ms") for r in ok if _lg(r, "max_ms") is not None),
                              default=None),
            "lag_interp_p99_ms": _median(_lg(r, "interp_p99_ms") for r in ok),
            "lag_samples": _median(_lg(r, "samples") for r in ok),
            "lag_unresolved": sum(_lg(r, "unresolved") or 0 for r in ok),
            "lag_target_rate": _median(_lg(r, "target_rate_cmd_s") for r in ok),
            "lag_written_rate": _median(_lg(r, "written_rate_cmd_s") for r in ok),
            "lag_applied_rate": _median(_lg(r, "applied_rate_cmd_s") for r in ok),
            "lag_cpu_cores": _median(_lg(r, "cpu_cores") for r in ok),
            "lag_cpu_total_cores": _median(
                (_lg(r, "cpu_total_s") or 0) / (_lg(r, "cpu_s") or 1) * _lg(r, "cpu_cores")
                if _lg(r, "cpu_cores") is not None and _lg(r, "cpu_s") else None for r in ok),
            "lag_sample_gap_ms": _median(_lg(r, "sample_gap_ms_median") for r in ok),
            "lag_offset_changes_per_s": _median(_lg(r, "consumer_offset_changes_per_s")
                                                for r in ok),
            # the destination: standalone, or a cluster (bench/cluster.py)
            "target": (runs[0].get("target") or {}).get("kind", "standalone"),
            "keys_match_source": all(r.get("keys_match_source", True) for r in runs),
            "keys_per_master": [(r.get("target") or {}).get("keys_per_master") for r in runs
                                if (r.get("target") or {}).get("keys_per_master")],
        }
    native = summary.get("native")
    for name, s in summary.items():
        s["time_ratio_vs_native"] = _ratio(s["full_sync_s"], native and native["full_sync_s"])
        s["cpu_per_key_ratio_vs_native"] = _ratio(s["ns_per_key"], native and native["ns_per_key"])
        s["cpu_total_ratio_vs_native"] = _ratio(s["cpu_total_s"],
                                                native and native["cpu_total_s"])
        s["catch_up_ratio_vs_native"] = _ratio(s["catch_up_rate"],
                                               native and native["catch_up_rate"])
    for name, s in summary.items():
        # the same replicator without checkpoint records (ringsync-nocp)
        nocp = summary.get(name + "-nocp")
        if nocp:
            s["catch_up_ratio_vs_nocp"] = _ratio(s["catch_up_rate"], nocp["catch_up_rate"])
            s["time_ratio_vs_nocp"] = _ratio(s["full_sync_s"], nocp["full_sync_s"])
    scenario["summary"] = summary
    return summary


def _cu(run, field):
    return (run.get("catch_up") or {}).get(field)


def _lg(run, field):
    return (run.get("lag") or {}).get(field)


def _ratio(a, b):
    if a is None or not b:
        return None
    return round(a / b, 3)


# --- the table ---------------------------------------------------------------

COLUMNS = [
    # header, alignment
    ("scenario", "<"), ("replicator", "<"), ("keys", ">"), ("full sync s", ">"),
    ("x native", ">"), ("cpu s", ">"), ("ns/key", ">"), ("x native", ">"),
    ("cpu+dest s", ">"), ("peak RSS MB", ">"), ("catch-up", ">"), ("lag p99", ">"),
    ("others", ">"), ("digest", "<"),
]


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(results, machine):
    lines = []
    m = machine
    lines.append("ringsync bench, %s; %s CPUs (%s), kernel %s, redis %s, ringsync %s; "
                 "load avg at start %s" % (m["date"], m["nproc"], m.get("cpu_model", "?"),
                                           m["kernel"], m["redis_version"],
                                           "%s (binary %s, built %s)" % (
                                               m.get("ringsync_commit", "?"),
                                               m.get("ringsync_sha256", "?")[:8],
                                               m.get("ringsync_mtime", "?")),
                                           m["loadavg_start"]))
    rows = []
    notes = []
    for sc in results:
        if sc["status"] != "ok":
            rows.append([sc["name"], "skipped: " + sc.get("reason", "")] + [""] * (len(COLUMNS) - 2))
            continue
        first = True
        keys = sc["source"]["keys"]
        for name, s in sc["summary"].items():
            if s["full_sync_s"] is None:
                t = "FAILED"
            elif s["runs_ok"] > 1:
                t = "%.2f (%.2f-%.2f)" % (s["full_sync_s"], s["full_sync_s_min"],
                                          s["full_sync_s_max"])
            else:
                t = "%.2f" % s["full_sync_s"]
            rss = s["peak_rss_kb"]
            rows.append([
                sc["name"] if first else "", name, str(keys) if first else "", t,
                _fmt(s["time_ratio_vs_native"], ".2f"),
                _fmt(s["cpu_s"], ".2f"), _fmt(s["ns_per_key"], ".0f"),
                _fmt(s["cpu_per_key_ratio_vs_native"], ".2f"),
                _fmt(s["cpu_total_s"], ".2f"),
                _fmt(rss / 1024 if rss else None, ".0f"),
                ("n/a*" if "catch_up" not in sc["spec"].get("measure", []) else "-")
                if s["catch_up_rate"] is None else "%.0fk/s" % (s["catch_up_rate"] / 1e3),
                ("n/a*" if "lag" not in sc["spec"].get("measure", []) else "-")
                if s["lag_p99_ms"] is None else "%.1f ms" % s["lag_p99_ms"],
                _fmt(s["other_cores"], ".2f"),
                "ok" if s["digest_ok"] else "FAIL",
            ])
            first = False
        notes.extend(target_notes(sc))
        if sc.get("notes"):
            notes.extend("%s: %s" % (sc["name"], n) for n in sc["notes"])
    measured = [r for r in rows if not r[1].startswith("skipped:")]
    widths = [max([len(h)] + [len(r[i]) for r in measured]) for i, (h, _) in enumerate(COLUMNS)]
    def line(cells):
        return "  ".join(format(c, a + str(w)) for c, (_, a), w in zip(cells, COLUMNS, widths)).rstrip()
    lines.append(line([h for h, _ in COLUMNS]))
    for r in rows:
        if r[1].startswith("skipped:"):
            lines.append(r[0].ljust(widths[0]) + "  " + r[1])
        else:
            lines.append(line(r))
    lines.append("full sync s: median (min-max) over the runs; x native: ratio of medians to "
                 "the native replica's in this run (goal for mixed-500k: <= 0.80).")
    lines.append("cpu s, ns/key: the replicator's own CPU (native: the replica's, loading "
                 "included); cpu+dest s: plus the destination redis-server's.")
    lines.append("peak RSS: the replicator's process (native: the replica, data set included). "
                 "* n/a: catch-up only in catch-up scenarios, lag only under a steady load "
                 "(tables below).")
    lines.append("others: CPU cores that other processes of the machine kept busy during the "
                 "sync (median; noise: above ~0.3 the absolute numbers are not this box's best).")
    lines.extend(catch_up_table(results))
    lines.extend(lag_table(results))
    lines.extend(notes)
    return "\n".join(lines)


def target_notes(sc):
    """The lines a scenario into a cluster adds below the table (what the
    destinations were, that the cluster holds the source's keys), and its
    full-sync goal (goal.full_sync_ratio_vs_native) if it has one."""
    out = []
    for name, s in sc["summary"].items():
        if s.get("target") != "cluster":
            continue
        runs = [r for r in sc["runs"] if r["replicator"] == name]
        t = runs[0]["target"]
        per = ["+".join(str(k) for k in p) for p in s["keys_per_master"]]
        src = [str(r.get("source_keys")) for r in runs]
        out.append("%s: %s wrote into a %d-master cluster (slots split evenly; cpu+dest, "
                   "+dest ns/cmd and dest memory: all the masters), the native replica into "
                   "one standalone server; keys per master (DBSIZE) %s, sum %s the source's %s"
                   % (sc["name"], name, t["masters"],
                      (per[0] + (" in every run" if len(per) > 1 else "")
                       if len(set(per)) == 1 else " / ".join(per)) if per else "-",
                      "=" if s["keys_match_source"] else "!= (FAIL)",
                      src[0] if len(set(src)) == 1 else " / ".join(src)))
        run = _representative_run(runs)
        cs = _write_commands((run or {}).get("dest_commandstats"))
        if cs:
            out.append("%s: %s's commands on the masters (median run, INFO commandstats): %s" % (
                sc["name"], name, ", ".join("%s %d (%.1f us each)" % (c, n, u / max(1, n))
                                            for c, (n, u) in cs)))
    goal = sc["spec"].get("goal", {}).get("full_sync_ratio_vs_native")
    rs = sc["summary"].get("ringsync")
    if goal and rs:
        ratio = rs.get("time_ratio_vs_native")
        out.append("%s: full sync goal <= %.2fx native: ringsync %s, %s" % (
            sc["name"], goal, "-" if ratio is None else "%.2fx" % ratio,
            "ok" if ratio is not None and ratio <= goal else "MISS"))
    return out


# what the harness and the replicators' start-up checks send a destination
_NOT_WRITES = ("info", "ping", "dbsize", "debug", "select", "config", "cluster", "module",
               "command", "client", "hello", "auth", "replicaof", "slaveof", "memory", "scan",
               "type", "pexpiretime", "function|list", "function|dump")


def _write_commands(stats, top=5):
    """[(command, (calls, usec))], the most called first, of the commands in
    a destination's commandstats that are not the harness's own."""
    if not stats:
        return []
    rows = [(c, tuple(v)) for c, v in stats.items()
            if not any(c == n or c.startswith(n + "|") for n in _NOT_WRITES)]
    return sorted(rows, key=lambda r: -r[1][0])[:top]


CU_COLUMNS = [
    ("scenario", "<"), ("replicator", "<"), ("commands", ">"), ("catch-up s", ">"),
    ("k cmd/s", ">"), ("x native", ">"), ("goal", "<"), ("cpu s", ">"), ("ns/cmd", ">"),
    ("goal", "<"), ("+dest ns/cmd", ">"), ("digest", "<"),
]


def catch_up_table(results):
    """The catch-up lines (empty when no scenario measured it)."""
    rows, cost = [], []
    for sc in results:
        if sc["status"] != "ok" or "catch_up" not in sc["spec"].get("measure", []):
            continue
        goal = sc["spec"].get("goal", {})
        cost.extend(checkpoint_cost_lines(sc))
        first = True
        for name, s in sc["summary"].items():
            if s["catch_up_s"] is None:
                t = "-"
            elif s["runs_ok"] > 1 and s["catch_up_s_min"] != s["catch_up_s_max"]:
                t = "%.2f (%.2f-%.2f)" % (s["catch_up_s"], s["catch_up_s_min"], s["catch_up_s_max"])
            else:
                t = "%.2f" % s["catch_up_s"]
            ratio = s["catch_up_ratio_vs_native"]
            g_ratio = goal.get("catch_up_ratio_vs_native")
            g_ns = goal.get("ns_per_command")
            is_ringsync = name == "ringsync"
            rows.append([
                sc["name"] if first else "", name,
                _fmt(s["catch_up_commands"], ".0f") if first else "", t,
                _fmt(s["catch_up_rate"] / 1e3 if s["catch_up_rate"] else None, ".0f"),
                _fmt(ratio, ".2f"),
                ("%s >= %.1f" % ("ok" if ratio is not None and ratio >= g_ratio else "MISS",
                                 g_ratio)) if (g_ratio and is_ringsync) else "",
                _fmt(s["catch_up_cpu_s"], ".2f"), _fmt(s["catch_up_ns_per_command"], ".0f"),
                ("%s <= %d" % ("ok" if (s["catch_up_ns_per_command"] or 1e9) <= g_ns else "MISS",
                               g_ns)) if (g_ns and is_ringsync) else "",
                _fmt(s["catch_up_cpu_total_ns_per_command"], ".0f"),
                "ok" if s["digest_ok"] else "FAIL",
            ])
            first = False
    if not rows:
        return []
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, (h, _) in enumerate(CU_COLUMNS)]

    def line(cells):
        return "  ".join(format(c, a + str(w))
                         for c, (_, a), w in zip(cells, CU_COLUMNS, widths)).rstrip()
    out = ["", "catch-up (the consumer paused by SIGSTOP while the source takes the backlog, "
           "then SIGCONT):", line([h for h, _ in CU_COLUMNS])]
    out.extend(line(r) for r in rows)
    out.append("catch-up s: from SIGCONT until the consumer's offset reaches the source's "
               "master_repl_offset (median (min-max)); ringsync: the offset it acknowledges with "
               "REPLCONF ACK (at once when drained; 100 ms periods before 2026-11-25 12:00), native: "
               "the replica's slave_repl_offset.")
    out.append("x native: ratio of the catch-up rates; ns/cmd: the replicator's own CPU per "
               "backlog command during the catch-up (native: the replica, applying included); "
               "+dest: plus ringsync's destination redis-server (a cluster: all its masters).")
    out.extend(cost)
    return out


def checkpoint_cost_lines(sc):
    """A catch-up scenario's line per replicator that ran beside its -nocp
    twin (ringsync and ringsync-nocp: --checkpoint none): the rate with
    checkpoint records over the rate without, against goal.checkpoint_cost_max
    (the largest slowdown allowed, e.g. 0.05)."""
    out = []
    g = sc["spec"].get("goal", {}).get("checkpoint_cost_max")
    for name, s in sc["summary"].items():
        nocp = sc["summary"].get(name + "-nocp")
        ratio = s.get("catch_up_ratio_vs_nocp")
        if not nocp or ratio is None:
            continue
        verdict = ""
        if g is not None:
            verdict = "; goal <= %.0f%%: %s" % (g * 100, "ok" if 1 - ratio <= g else "MISS")
        out.append("%s: checkpoint cost: %s %.0fk cmd/s with checkpoints, %s %.0fk without: "
                   "%.3fx (%.1f%% %s%s); ns/cmd %s vs %s, +dest ns/cmd %s vs %s" % (
                       sc["name"], name, s["catch_up_rate"] / 1e3, name + "-nocp",
                       nocp["catch_up_rate"] / 1e3, ratio, abs(1 - ratio) * 100,
                       "slower" if ratio < 1 else "faster", verdict,
                       _fmt(s["catch_up_ns_per_command"], ".0f"),
                       _fmt(nocp["catch_up_ns_per_command"], ".0f"),
                       _fmt(s["catch_up_cpu_total_ns_per_command"], ".0f"),
                       _fmt(nocp["catch_up_cpu_total_ns_per_command"], ".0f")))
    return out


LAG_COLUMNS = [
    ("scenario", "<"), ("replicator", "<"), ("target k/s", ">"), ("written k/s", ">"),
    ("applied k/s", ">"), ("lag p50 ms", ">"), ("p99 ms", ">"), ("max ms", ">"), ("goal", "<"),
    ("samples", ">"), ("cpu cores", ">"), ("+dest", ">"), ("digest", "<"),
]


def lag_table(results):
    """The steady-load lines (empty when no scenario measured lag)."""
    rows, heads = [], []
    for sc in results:
        if sc["status"] != "ok" or "lag" not in sc["spec"].get("measure", []):
            continue
        goal = sc["spec"].get("goal", {}).get("lag_p99_ms")
        st = sc.get("steady", {})
        heads.append("%s: %g s of SET (%d-byte values, %d keys) at %.0f/s: %s" % (
            sc["name"], st.get("duration_s", 0), st.get("value_size", 0), st.get("keyspace", 0),
            st.get("rate_cmd_s", 0), st.get("rate_source", "?")))
        first = True
        for name, s in sc["summary"].items():
            p99 = s["lag_p99_ms"]
            if p99 is None:
                p99s = "-"
            elif s["runs_ok"] > 1 and s["lag_p99_ms_min"] != s["lag_p99_ms_max"]:
                p99s = "%.2f (%.2f-%.2f)" % (p99, s["lag_p99_ms_min"], s["lag_p99_ms_max"])
            else:
                p99s = "%.2f" % p99
            rows.append([
                sc["name"] if first else "", name,
                _fmt(s["lag_target_rate"] / 1e3 if s["lag_target_rate"] else None, ".0f"),
                _fmt(s["lag_written_rate"] / 1e3 if s["lag_written_rate"] else None, ".0f"),
                _fmt(s["lag_applied_rate"] / 1e3 if s["lag_applied_rate"] else None, ".0f"),
                _fmt(s["lag_p50_ms"], ".2f"), p99s, _fmt(s["lag_max_ms"], ".1f"),
                ("%s < %g" % ("ok" if p99 is not None and p99 < goal else "MISS", goal))
                if goal and name == "ringsync" else "",
                _fmt(s["lag_samples"], ".0f") + ("" if not s["lag_unresolved"] else
                                                  " (%d unresolved)" % s["lag_unresolved"]),
                _fmt(s["lag_cpu_cores"], ".2f"),
                _fmt(s["lag_cpu_total_cores"], ".2f"),
                "ok" if s["digest_ok"] else "FAIL",
            ])
            first = False
    if not rows:
        return []
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, (h, _) in enumerate(LAG_COLUMNS)]

    def line(cells):
        return "  ".join(format(c, a + str(w))
                         for c, (_, a), w in zip(cells, LAG_COLUMNS, widths)).rstrip()
    out = ["", "lag under a steady load (bench_loadgen paced every 0.5 ms; the first second "
           "left out):"] + heads + [line([h for h, _ in LAG_COLUMNS])]
    out.extend(line(r) for r in rows)
    out.append("lag: for each sample (every ~1 ms) of the source's master_repl_offset, the time "
               "until the consumer's applied offset reached it (ringsync: the offset it "
               "acknowledges with REPLCONF ACK, from a second INFO of the source; native: the "
               "replica's slave_repl_offset): late by up to one sample interval; median "
               "(min-max) of the runs' p99, max: the largest over the runs.")
    out.append("written: bench_loadgen's achieved rate; applied: the consumer's offset rate "
               "over the steady part; cpu cores: the consumer's CPU over the load "
               "(native: the replica), +dest: with its destination redis-server.")
    return out


def write_json(path, document):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(document, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


# --- plots -------------------------------------------------------------------

COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _gnuplot(script, workdir):
    r = subprocess.run(["gnuplot"], input=script.encode(), cwd=workdir,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise RuntimeError("gnuplot failed:\n" + r.stdout.decode(errors="replace"))


def _replicator_order(results):
    names = []
    for sc in results:
        for name in sc.get("summary", {}):
            if name not in names:
                names.append(name)
    return names


def _bar_chart(path, work, title, ylabel, results, names, value, err=None, logscale=False):
    """Clustered bars: one group per scenario, one bar per replicator."""
    rows = [sc for sc in results if sc["status"] == "ok"]
    if not rows:
        return None
    dat = os.path.join(work, os.path.basename(path) + ".dat")
    with open(dat, "w") as f:
        for sc in rows:
            cells = ['"%s"' % sc["name"]]
            for n in names:
                s = sc["summary"].get(n)
                v = value(s) if s else None
                lo, hi = err(s) if (err and s) else (v, v)
                cells += ["NaN" if x is None else "%g" % x for x in (v, lo, hi)]
            f.write(" ".join(cells) + "\n")
    plots = []
    for i, n in enumerate(names):
        c = 2 + 3 * i
        using = "%d:%d:%d" % (c, c + 1, c + 2)
        if i == 0:
            using += ":xtic(1)"
        plots.append("'%s' using %s title '%s' lc rgb '%s'" % (
            os.path.basename(dat), using, n, COLORS[i % len(COLORS)]))
    script = """
set terminal pngcairo size 900,500 font 'sans,10'
set output '%s'
set title '%s'
set ylabel '%s'
set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key top left
set grid ytics
set yrange [%s:*]
%s
plot %s
""" % (path, title, ylabel, "1" if logscale else "0", "set logscale y" if logscale else "",
       ", ".join(plots))
    _gnuplot(script, work)
    return path


def _series_chart(path, work, title, panels, series, xlabel="seconds since the sync started",
                  styles=None, key="bottom right"):
    """Lines over time, one per series, in one panel per value:
    series = {name: [(t, v1, v2, ...), ...]}, panels = [(ylabel, scale), ...]
    for v1, v2, ... (a value is divided by its scale); styles = {name: gnuplot
    line style} replaces the default (a line of the name's colour)."""
    series = {n: pts for n, pts in series.items() if pts}
    if not series:
        return None
    names = list(series)
    title = title.replace("'", "''")  # gnuplot's single-quoted strings
    for i, n in enumerate(names):
        with open(os.path.join(work, "%s.%d.dat" % (os.path.basename(path), i)), "w") as f:
            for p in series[n]:
                f.write(" ".join("NaN" if v is None else "%g" % v for v in p) + "\n")
    body = []
    for k, (ylabel, scale) in enumerate(panels):
        plots = ["'%s.%d.dat' using 1:($%d/%g) with %s title '%s'" % (
            os.path.basename(path), i, k + 2, scale,
            (styles or {}).get(n, "lines lw 2 lc rgb '%s'" % COLORS[i % len(COLORS)]), n)
            for i, n in enumerate(names)]
        body.append("set ylabel '%s'\n%s\nplot %s" % (
            ylabel, "set title '%s'" % title if k == 0 else "unset title", ", ".join(plots)))
    script = """
set terminal pngcairo size 900,%d font 'sans,10'
set output '%s'
set multiplot layout %d,1
set xlabel '%s'
set key %s
set grid
set yrange [0:*]
%s
unset multiplot
""" % (300 + 250 * len(panels), path, len(panels), xlabel, key, "\n".join(body))
    _gnuplot(script, work)
    return path


def _representative_run(runs):
    """The run whose full-sync time is the median of its replicator's runs."""
    ok = sorted((r for r in runs if r.get("full_sync_s") is not None),
                key=lambda r: r["full_sync_s"])
    return ok[(len(ok) - 1) // 2] if ok else None


def plots(results, outdir):
    """Draws the charts into outdir; returns the paths written."""
    if not shutil.which("gnuplot"):
        return []
    os.makedirs(outdir, exist_ok=True)
    outdir = os.path.abspath(outdir)
    names = _replicator_order(results)
    written = []
    with tempfile.TemporaryDirectory(prefix="ringsync-bench-plot-") as work:
        written.append(_bar_chart(
            os.path.join(outdir, "full_sync_time.png"), work,
            "Full sync time (median, bars min-max); lower is better", "seconds",
            results, names, lambda s: s["full_sync_s"],
            lambda s: (s["full_sync_s_min"], s["full_sync_s_max"])))
        written.append(_bar_chart(
            os.path.join(outdir, "full_sync_cpu.png"), work,
            "CPU of the replicator plus its destination redis-server (median)", "CPU seconds",
            results, names, lambda s: s["cpu_total_s"]))
        written.append(_bar_chart(
            os.path.join(outdir, "peak_rss.png"), work,
            "Peak RSS of the replicator process (native: the replica, data set included)",
            "MiB (log scale)", results, names,
            lambda s: s["peak_rss_kb"] / 1024 if s.get("peak_rss_kb") else None,
            logscale=True))
        for sc in results:
            if sc["status"] != "ok":
                continue
            series = {}
            for n in names:
                run = _representative_run([r for r in sc["runs"] if r["replicator"] == n])
                if run and run.get("progress"):
                    series[n] = [tuple(p) + (None,) * (3 - len(p)) for p in run["progress"]]
            written.append(_series_chart(
                os.path.join(outdir, "progress_%s.png" % _file_name(sc["name"])), work,
                "%s: the destination during the full sync (median run)" % sc["name"],
                [("keys", 1), ("used memory, MB", 1e6)], series))
            written.extend(_catch_up_chart(sc, names, outdir, work))
            written.extend(_lag_charts(sc, names, outdir, work))
    return [p for p in written if p]


def _median_run(runs, field):
    """The run whose value of field (a function of the run) is the median."""
    ok = sorted((r for r in runs if field(r) is not None), key=field)
    return ok[(len(ok) - 1) // 2] if ok else None


def _catch_up_chart(sc, names, outdir, work):
    """catchup_<scenario>.png: the consumer's offset (MB past where it was at
    SIGCONT) over the catch-up, median run per replicator."""
    series = {}
    for n in names:
        run = _median_run([r for r in sc["runs"] if r["replicator"] == n],
                          lambda r: _cu(r, "seconds"))
        pts = [p for p in (_cu(run, "offset_series") or []) if p[1] is not None] if run else []
        if pts:
            series[n] = [(t, o - pts[0][1]) for t, o in pts]
    if not series:
        return []
    return [_series_chart(
        os.path.join(outdir, "catchup_%s.png" % _file_name(sc["name"])), work,
        "%s: consumer offset in the catch-up (median run)" % sc["name"], [("MB of the stream applied", 1e6)], series,
        xlabel="seconds since SIGCONT", key="bottom right",
        styles={n: "steps lw 2 lc rgb '%s'" % COLORS[i % len(COLORS)]
                for i, n in enumerate(names)})]


def _lag_charts(sc, names, outdir, work):
    """lag_<scenario>.png (the lag over time, the largest per 10 ms) and
    throughput_<scenario>.png (applied and written commands/s per 100 ms),
    the run with the median p99 per replicator."""
    lag, rate = {}, {}
    for n in names:
        run = _median_run([r for r in sc["runs"] if r["replicator"] == n],
                          lambda r: _lg(r, "p99_ms"))
        if run and run.get("lag_series"):
            lag[n] = run["lag_series"]
        if run and run.get("throughput_series"):
            rate["%s applied" % n] = [(t, a) for t, a, _ in run["throughput_series"]]
            rate["%s: source written" % n] = [(t, b) for t, _, b in run["throughput_series"]]
    out = []
    if lag:
        goal = sc["spec"].get("goal", {}).get("lag_p99_ms")
        out.append(_series_chart(
            os.path.join(outdir, "lag_%s.png" % _file_name(sc["name"])), work,
            "%s: replication lag, the largest per 10 ms (median-p99 run)%s" % (
                sc["name"], "; goal p99 < %g ms" % goal if goal else ""),
            [("lag, ms", 1)], lag, xlabel="seconds since the load started", key="top right"))
    if rate:
        styles = {}
        for i, n in enumerate(names):
            styles["%s applied" % n] = "lines lw 2 lc rgb '%s'" % COLORS[i % len(COLORS)]
            styles["%s: source written" % n] = "lines lw 1 dt 2 lc rgb '%s'" % (
                COLORS[i % len(COLORS)])
        out.append(_series_chart(
            os.path.join(outdir, "throughput_%s.png" % _file_name(sc["name"])), work,
            "%s: commands/s per 100 ms, applied by the consumer and written to the source "
            "(dashed)" % sc["name"], [("k commands/s", 1e3)], rate,
            xlabel="seconds since the load started", styles=styles, key="bottom left"))
    return out


def _file_name(name):
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
