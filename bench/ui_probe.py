#!/usr/bin/python3
"""ui_probe.py - key to screen latency of the console in a tmux pane, seen
from outside: every EVERY seconds it notes which tree row the cursor is on
(the row drawn in reverse video: run the console with --theme mono, where
only the cursor row and the footer are reverse), sends KEY with
`tmux send-keys` and polls `tmux capture-pane -e -p` until the cursor is on
another row.  The time from send-keys to the capture that shows the move
includes tmux (the key's way in, the screen's way back) and the captures
themselves; a key that shows no move within 2 s counts as lost.  Used by
bench/ui.

    ui_probe.py --socket S --target T [--key j] [--every 0.2] [--until FILE]
                [--seconds MAX]

Stops when FILE exists (the console ended) or after MAX seconds, then
prints one line: "keys N lost L median M p90 P max X ms  capture C ms".
"""
import argparse
import re
import statistics
import subprocess
import time
import os

SGR = re.compile(r"\x1b\[([0-9;]*)m")
NAME = re.compile(r"sim-\d+\.\S+|[A-Za-z][^()]*?(?=\s+\()")


def capture(sock, target):
    return subprocess.run(["tmux", "-L", sock, "capture-pane", "-e", "-p", "-t", target],
                          capture_output=True, text=True, errors="replace").stdout


def cursor_row(screen):
    """The text of the first row (not the title, not the last two lines)
    whose first cell is drawn in reverse, or None."""
    reverse = False
    lines = screen.split("\n")
    for i, line in enumerate(lines):
        pos = 0
        first = None
        for m in SGR.finditer(line):
            if m.start() > pos and first is None:
                first = reverse
            for p in (m.group(1) or "0").split(";"):
                if p in ("", "0", "27"):
                    reverse = False
                elif p == "7":
                    reverse = True
            pos = m.end()
        if first is None:
            first = reverse
        if first and 0 < i < len(lines) - 3:
            text = SGR.sub("", line)
            m = NAME.search(text)
            return m.group(0).strip() if m else text.strip()
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--key", default="j")
    ap.add_argument("--every", type=float, default=0.2)
    ap.add_argument("--until")
    ap.add_argument("--seconds", type=float, default=60.0)
    a = ap.parse_args()

    lat, lost, caps = [], 0, []
    start = time.monotonic()
    while time.monotonic() - start < a.seconds and not (a.until and os.path.exists(a.until)):
        tick = time.monotonic()
        before = cursor_row(capture(a.socket, a.target))
        if before is None:
            time.sleep(a.every)
            continue
        t0 = time.monotonic()
        subprocess.run(["tmux", "-L", a.socket, "send-keys", "-t", a.target, a.key])
        while True:
            c0 = time.monotonic()
            now = cursor_row(capture(a.socket, a.target))
            caps.append(time.monotonic() - c0)
            if now is not None and now != before:
                lat.append((time.monotonic() - t0) * 1000.0)
                break
            if time.monotonic() - t0 > 2.0:
                lost += 1
                break
        rest = a.every - (time.monotonic() - tick)
        if rest > 0:
            time.sleep(rest)
    if lat:
        q = statistics.quantiles(lat, n=10) if len(lat) > 1 else [lat[0]] * 9
        print("keys %d lost %d median %.1f p90 %.1f max %.1f ms  capture %.1f ms"
              % (len(lat) + lost, lost, statistics.median(lat), q[8], max(lat),
                 statistics.median(caps) * 1000.0))
    else:
        print("keys %d lost %d (no move seen)" % (lost, lost))


if __name__ == "__main__":
    main()
