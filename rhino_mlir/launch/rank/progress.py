"""The live progress line of `rhino train`, read from the metrics file as rank 0 writes it.

    step 26/40  loss 3.9821  12.4 ms/step  ETA 0:00:02

On a terminal the line is rewritten in place; otherwise (a log file, a pipe) one line
is printed at most every 10 s so logs stay short. "loss" is the first scalar result
(`out<i>`) of the step record; the ETA uses the median of the recent step times.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


class Progress:
    def __init__(self, metrics: str | None, total: int, attempt: int, stream=None):
        self.path = Path(metrics) if metrics else None
        self.total, self.attempt = total, attempt
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.pos = self.path.stat().st_size if self.path and self.path.exists() else 0
        self.buf = ""
        self.last: dict | None = None
        self.recent: list[float] = []
        self.shown = 0.0

    def poll(self) -> None:
        if self.path is None or not self.path.exists():
            return
        with open(self.path) as f:
            f.seek(self.pos)
            chunk = f.read()
            self.pos = f.tell()
        self.buf += chunk
        *lines, self.buf = self.buf.split("\n")
        for ln in lines:
            try:
                rec = json.loads(ln)
            except json.JSONDecodeError:
                continue
            if "event" not in rec and "step" in rec:
                self.last = rec
                self.recent = (self.recent + [rec["step_ms"]])[-20:]
        if self.last is not None:
            now = time.time()
            if self.tty or now - self.shown >= 10:
                self.shown = now
                self._show()

    def line(self) -> str:
        r = self.last
        k = r["step"] + 1
        loss = next((v for key, v in r.items() if key.startswith("out")), None)
        ms = sorted(self.recent)[len(self.recent) // 2]
        eta = int(max(0, self.total - k) * ms / 1e3)
        return (f"step {k}/{self.total}" + (f"  loss {loss:.6g}" if isinstance(loss, (int, float)) else "")
                + f"  {ms:.1f} ms/step  ETA {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}")

    def _show(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + self.line())
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def done(self) -> None:
        self.poll()
        if self.last is not None and self.tty:
            self.stream.write("\n")
            self.stream.flush()
