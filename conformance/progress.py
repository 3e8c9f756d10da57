"""The live display of a run: one status line on a terminal, a line per milestone elsewhere (CI logs stay short)."""

from __future__ import annotations

import sys
import time


class Progress:
    """One status line on a terminal; a line per milestone elsewhere (CI logs stay short). Counts are after the
    known-divergence registry (records are marked as they arrive), so a fail here is a fail in results.json."""

    def __init__(self, stream=None, total: int = 0):  # total: or from the run's ("planned", units) message
        stream = stream or sys.stderr  # looked up now, not at import: stderr may have been redirected since
        self.stream, self.tty = stream, stream.isatty()
        self.state: dict[str, str] = {}
        self.done: dict[str, int] = {}
        self.total = total  # (case, op, dtype) units over every shard of the plan
        self.records = self.bad = self.known = 0
        self.started = time.monotonic()
        self.last_tenth = -1
        self.said: set[str] = set()

    def overall(self) -> str:
        if not self.total:
            return ""
        fraction = min(1.0, sum(self.done.values()) / self.total)
        elapsed = time.monotonic() - self.started
        eta = f", about {elapsed * (1 - fraction) / fraction:.0f} s left" if 0.02 < fraction < 1 else ""
        return f"{fraction:.0%} overall{eta}"

    def __call__(self, msg: tuple) -> None:
        kind = msg[0]
        if kind == "planned":
            self.total = msg[1]  # (case, op, dtype) units over every shard of the plan
            return
        if kind == "record":
            self.records += 1
            self.bad += msg[1]["status"] in ("fail", "error")
            self.known += msg[1]["status"] == "known"
            return
        if kind == "progress":
            name, done, total = msg[1:]
            self.state[name], self.done[name] = f"{done}/{total}", done
            tenth = int(10 * sum(self.done.values()) / self.total) if self.total else -1
            if not self.tty and tenth > self.last_tenth:
                self.last_tenth = tenth
                self._line(f"{self.overall()} ({self.records} records: {self.bad} fail/error, {self.known} known)")
        elif kind == "info" and "absent" in msg[2]:
            self._once(f"{msg[1]}: absent, skipped ({msg[2]['absent']})")
        elif kind == "info" and msg[2].get("skipped_devices"):
            self._once(f"{msg[1]}: {'; '.join(msg[2]['skipped_devices'].values())}: skipped")
        elif kind == "done":
            self.state[msg[1]] = "done"
            self._line(f"{msg[1]}: done")
        elif kind == "lost":
            self.state[msg[1]] = "LOST"
            self._line(f"{msg[1]}: LOST ({msg[2]}); the records it sent are kept, the run will be incomplete")
        if self.tty:
            status = " | ".join(f"{k} {v}" for k, v in self.state.items())
            self.stream.write(f"\r\x1b[K{self.overall()} | {status} | {self.records} records, {self.bad} fail/error, {self.known} known, "
                              f"{time.monotonic() - self.started:.0f}s")
            self.stream.flush()

    def _once(self, text: str) -> None:
        """A framework's news, said once however many of its shards report it."""
        if text not in self.said:
            self.said.add(text)
            self._line(text)

    def _line(self, text: str) -> None:
        prefix = "\r\x1b[K" if self.tty else ""
        self.stream.write(f"{prefix}[{time.monotonic() - self.started:5.1f}s] {text}\n")
        self.stream.flush()
