"""The speed section (Markdown tables and a GB/s plot) from pytest-benchmark JSON written by `conformance bench`."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..model import dtypes as dt
from ..run import results as results_io
from ..run.results import atomic
from ..speed.documents import BENCH_FILE
from ..speed.measure import OVERHEAD_FLOOR_S, OVERHEAD_SHARE
from .markdown import table

PLOT = "speed_gbps.png"


def _time(seconds: float) -> str:
    if seconds >= 1e-1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-4:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _kind(benchmarks: list[dict], kind: str) -> list[dict]:
    return [b for b in benchmarks if b.get("extra_info", {}).get("kind") == kind]


def _shape(e: dict) -> str:
    return "x".join(str(n) for n in e["shape"])


def _size(e: dict) -> int:
    """Elements per call: sorts shapes from small to large."""
    return e["shape"][0] * e["shape"][1]


def _order(b: dict):
    e = b["extra_info"]
    return (e["device"], _size(e), e["op"], e["pass"], e["dtype"], e["mode"], e["framework"], e.get("naive", False), e.get("impl", ""))


def speed_table(benchmarks: list[dict]) -> tuple[list[str], list[list]]:
    rows = []
    for b in sorted(_kind(benchmarks, "speed"), key=_order):
        e, s = b["extra_info"], b["stats"]
        impl = ("naive: " if e["naive"] and not e["impl"].startswith("naive") else "") + e["impl"]
        rows.append([e["framework"], impl, e["op"], e["pass"], e["dtype"], e["mode"], _shape(e), e["device"], _time(s["min"]),
                     _time(s["median"]), _pct(s["iqr"] / s["median"]), f"{e['gbps']:.3g}", "-" if e["roof_gbps"] is None else f"{e['roof_gbps']:.3g}",
                     _pct(e["roof_fraction"]), _time(e["first_call_s"])])
    return (["framework", "implementation", "op", "pass", "dtype", "mode", "N x C", "device", "min", "median", "IQR/median",
             "GB/s", "roof GB/s", "of roof", "first call"], rows)


def fastest(benchmarks: list[dict]) -> tuple[list[str], list[list]]:
    """For each op, pass, dtype, shape and device: the fastest implementation, and the fastest of each framework."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for b in _kind(benchmarks, "speed"):
        e = b["extra_info"]
        groups[(e["device"], _size(e), _shape(e), e["op"], e["pass"], e["dtype"])].append(b)
    rows = []
    for (device, _, shape, op, passes, dtype), bs in sorted(groups.items()):
        best_per_fw: dict[str, dict] = {}
        for b in bs:
            fw = b["extra_info"]["framework"]
            if fw not in best_per_fw or b["stats"]["min"] < best_per_fw[fw]["stats"]["min"]:
                best_per_fw[fw] = b
        ranked = sorted(best_per_fw.values(), key=lambda b: b["stats"]["min"])
        cells = [f"{b['extra_info']['framework']} {b['extra_info']['mode']} {_time(b['stats']['min'])}" for b in ranked]
        rows.append([op, passes, dtype, shape, device, " < ".join(cells)])
    return (["op", "pass", "dtype", "N x C", "device", "fastest of each framework, best first (min time)"], rows)


def _mib(nbytes) -> str:
    return "-" if nbytes is None else f"{nbytes / 2 ** 20:.1f} MiB"


def memory(benchmarks: list[dict]) -> tuple[list[str], list[list]]:
    """The benchmarks that measured their peak memory (the fused linear cross-entropy): per dtype, pass and vocabulary,
    each door's time and peak beside the logits it would hold, fastest first."""
    rows = []
    measured = [b for b in _kind(benchmarks, "speed") if "peak_bytes" in b["extra_info"]]
    for b in sorted(measured, key=lambda b: (b["extra_info"]["dtype"], b["extra_info"]["pass"], _size(b["extra_info"]), b["stats"]["min"])):
        e = b["extra_info"]
        logits = _size(e) * dt.fmt(e["dtype"]).np_dtype.itemsize
        rows.append([e["dtype"], e["pass"], _shape(e), f"{e['framework']} {e['impl']}", e["mode"], _time(b["stats"]["min"]),
                     _mib(e["peak_bytes"]), _mib(logits), "-" if e["peak_bytes"] is None else f"{e['peak_bytes'] / logits:.2f}"])
    return (["dtype", "pass", "tokens x vocabulary", "implementation", "mode", "min time", "peak memory", "the logits", "peak / logits"], rows)


def memory_lines(benchmarks: list[dict]) -> list[str]:
    """What `conformance bench` prints of the memory table: a line per door and size."""
    _, rows = memory(benchmarks)
    return [f"memory: {r[0]} {r[1]} {r[2]}: {r[3]} ({r[4]}) {r[5]}, peak {r[6]} ({r[8]} of the logits' {r[7]})" for r in rows]


def overhead(benchmarks: list[dict]) -> tuple[list[str], list[list]]:
    """Per op, pass, mode and size: the bare public call and the adapter's call, timed side by side (interleaved), the
    overhead against the target (speed.overhead_ok), and pytest-benchmark against the hand loop for the adapter call.
    Old files (a 'raw'/'adapter' pair of softmax calls) have no bare_loop and are left out."""
    rows = []
    for b in sorted((b for b in _kind(benchmarks, "overhead") if "bare_loop" in b["extra_info"]), key=_order):
        e, s = b["extra_info"], b["stats"]
        loop, bare = e["hand_loop"], e["bare_loop"]
        extra = loop["min"] - bare["min"]
        noise = max(loop["iqr"], bare["iqr"])  # shown, like the overhead, in us and as a share of the bare call's minimum
        rows.append([e["framework"], e["impl_id"], e["pass"], e["mode"], _shape(e), e["device"], _time(bare["min"]), _time(loop["min"]),
                     f"{extra * 1e6:+.2f} us ({extra / bare['min']:+.1%})", f"{noise * 1e6:.2f} us ({noise / bare['min']:.1%})",
                     overhead_verdict(e.get("overhead_ok"), extra, noise), "yes" if timers_agree(s, loop) else "no"])
    return (["framework", "implementation", "pass", "mode", "N x C", "device", "bare call (min)", "adapter call (min)",
             "overhead", "noise (larger IQR)", f"within {OVERHEAD_SHARE:.0%} or {OVERHEAD_FLOOR_S * 1e6:.0f} us",
             "pytest-benchmark agrees with the hand loop"], rows)


def overhead_verdict(ok: bool | None, extra: float, noise: float) -> str:
    """yes: within the target; 'no, within noise': over it by less than the larger interquartile range of the two
    calls (the difference cannot be told from the noise); NO: over it beyond the noise."""
    if ok:
        return "yes"
    return "no, within noise" if extra <= noise else "NO"


def timers_agree(bench_stats: dict, loop: dict) -> bool:
    """The minimum (the figure GB/s and the gate use) of the two timers differs by no more than the larger IQR."""
    return abs(bench_stats["min"] - loop["min"]) <= max(bench_stats["iqr"], loop["iqr"])


def intro(benchmarks: list[dict]) -> str:
    speed = _kind(benchmarks, "speed")
    e0 = speed[0]["extra_info"] if speed else {}
    return (f"{len(speed)} benchmarks (pytest-benchmark; min and median of calibrated rounds, compilation and warm-up excluded; "
            f"{e0.get('threads', '?')} threads for every framework). GB/s = compulsory bytes / min time "
            "(formulas in conformance/speed/measure.py); the roof is a STREAM-like copy at the same footprint measured in the same run"
            + (f" ({e0['roof_method']})." if e0.get("roof_method") else "."))


def tables(benchmarks: list[dict]) -> list[tuple[str, str, list[str], list[list]]]:
    """(title, explanation, header, rows) of each speed table, for Markdown and HTML alike."""
    return [
        ("Fastest per op and size", "Each framework's fastest implementation and mode.", *fastest(benchmarks)),
        ("Harness overhead and timer check",
         "Each op's first fused implementation, float32: the call the benchmarks time (adapter.benchmark_call) against the "
         "same public call written out bare (adapter.bare_call: the function, its mean where it has none, the framework's "
         "own compiler and autodiff), timed side by side in alternating rounds so drift falls on both. Overhead = "
         "difference of the minimums. The last column checks pytest-benchmark's minimum for the adapter call against the "
         "hand-written loop's: they agree when they differ by no more than the larger interquartile range.", *overhead(benchmarks)),
        ("Every benchmark", "", *speed_table(benchmarks)),
    ] + ([("Time and peak memory of the fused linear cross-entropy",
           "Per vocabulary, each door's minimum time and the peak memory of one call (resident-set growth in a fresh process, "
           "conformance/speed/memory.py), beside the size of the [tokens, vocabulary] logits a composed form holds: what chunking "
           "saves, and what it costs in time. The fixed-policy chunked doors use 4-row chunks (sized for the conformance suite, not "
           "for speed); read a door that picks its own chunks for the framework's own choice.", *memory(benchmarks))] if memory(benchmarks)[1] else [])


def section(benchmarks: list[dict], plot: str | None) -> list[str]:
    if not benchmarks:
        return []
    lines = ["## Speed", "", intro(benchmarks), ""]
    if plot:
        lines += [f"![GB/s by framework and size]({plot})", ""]
    for title, text, header, rows in tables(benchmarks):
        lines += [f"### {title}", ""] + ([text, ""] if text else []) + table(header, rows) + [""]
    return lines


def plot(benchmarks: list[dict], out: Path) -> str | None:
    """GB/s against bytes moved, one panel per mode, a colour per framework, the copy roof as black dashes."""
    speed = [b for b in _kind(benchmarks, "speed") if not b["extra_info"]["naive"]]
    if not speed:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = sorted({b["extra_info"]["mode"] for b in speed})
    fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 4.2), sharey=True, squeeze=False)
    frameworks = sorted({b["extra_info"]["framework"] for b in speed})
    colours = {fw: f"C{i}" for i, fw in enumerate(frameworks)}  # matplotlib's default cycle, one colour per framework
    markers = {"forward": "o", "forward+backward": "^"}
    for ax, mode in zip(axes[0], modes):
        for device, roof_marker in (("cpu", "_"), ("gpu", "x")):
            roof = sorted({(b["extra_info"]["bytes"], b["extra_info"]["roof_gbps"]) for b in speed
                           if b["extra_info"]["roof_gbps"] and b["extra_info"]["device"] == device})
            if roof:  # one point per footprint and process: each framework's process measures its own roof
                ax.scatter(*zip(*roof), color="black", marker=roof_marker, s=60, label=f"copy roof ({device})")
        for fw in frameworks:
            for passes, marker in markers.items():
                pts = [(b["extra_info"]["bytes"], b["extra_info"]["gbps"]) for b in speed
                       if b["extra_info"]["framework"] == fw and b["extra_info"]["mode"] == mode and b["extra_info"]["pass"] == passes]
                if pts:
                    ax.scatter(*zip(*pts), s=18, alpha=0.7, marker=marker, color=colours[fw], label=f"{fw} {passes}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{mode} (fused implementations)")
        ax.set_xlabel("compulsory bytes moved per call")
        ax.grid(True, which="major", lw=0.3)
    axes[0][0].set_ylabel("GB/s (bytes / min time)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic(out / PLOT) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return PLOT


def write(doc: dict, out: Path) -> list[Path]:
    """benchmarks.json (atomic: an interrupted run never leaves half a file), speed.md and the GB/s plot in `out`."""
    path = out / BENCH_FILE
    results_io.write(doc, path)
    plotted = plot(doc["benchmarks"], out)
    results_io.write_text(out / "speed.md", "\n".join(section(doc["benchmarks"], plotted)) + "\n")
    return [path, out / "speed.md"] + ([out / plotted] if plotted else [])
