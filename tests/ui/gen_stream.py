#!/usr/bin/python3
"""gen_stream.py - writes a synthetic job event stream (docs/protocol.md §12,
the NDJSON `choir run --json` prints) for `choir replay` and bench/ui.

    gen_stream.py [--nodes N] [--groups G] [--rate R] [--seconds S]
                  [--batch B] [--fail PCT] [--lines L] [--seed X] [--job ID]
                  [-o FILE]

N nodes (sim-00001.example.net ...) in G groups of about equal size, each
group run in steps of at most B nodes (0: the whole group in one step).
Every node of a step goes waiting -> starting -> running -> succeeded (or
failed, PCT percent of them, seeded) with an `output` event of L lines
while running.  Node events are the state changes: their `time` fields
advance so that there are R of them per second of stream (`output`,
`step` and `job` events take no time of their own).  Inside a step the
transitions of its nodes interleave as real runs do (seeded random
start and finish order, each node's own order kept).

When the job has run every group in less than S seconds of stream, the
operator retries it (an `operator` event, every node back to `waiting`
with reason "retry") and it runs again, round after round, so a benchmark
gets R changes a second for S seconds.  The stream starts with the `plan`
event and ends with the `result` event.  Same arguments, same bytes.
"""
import argparse
import json
import random
import sys

T0 = 1790000000000  # a fixed epoch (ms): same arguments, same bytes


class Stream:
    def __init__(self, out, job, rate):
        self.out = out
        self.job = job
        self.ms_per_change = 1000.0 / rate
        self.t = float(T0)
        self.changes = 0

    def emit(self, type_, **kw):
        ev = {"v": 1, "type": type_, "time": int(self.t), "job": self.job}
        ev.update(kw)
        self.out.write(json.dumps(ev, separators=(",", ":")) + "\n")

    def change(self, **kw):
        """A node event: one state change, 1/R seconds of stream."""
        self.t += self.ms_per_change
        self.changes += 1
        self.emit("node", **kw)


def node_name(i):
    return "sim-%05d.example.net" % (i + 1)


def split(nodes, parts):
    """Slices nodes into `parts` runs of about equal length, in order."""
    size, extra = divmod(len(nodes), parts)
    out, k = [], 0
    for g in range(parts):
        n = size + (1 if g < extra else 0)
        out.append(nodes[k:k + n])
        k += n
    return [p for p in out if p]


def run_step(s, rng, args, group, step, names, fail, state):
    s.emit("step", group=group, step=step, nodes=names)
    # each node: starting, running, output, finished, at random virtual times
    plan = []
    for n in names:
        a = rng.random()
        b = a + rng.random() * 0.2
        c = b + 0.1 + rng.random()
        plan += [(a, 0, n), (b, 1, n), (c, 2, n)]
    plan.sort()
    for _, what, n in plan:
        g = group
        if what == 0:
            s.change(node=n, group=g, state="starting", reason="starting", locked=False)
        elif what == 1:
            s.change(node=n, group=g, state="running", reason="running", locked=False)
            if args.lines:
                lines = [{"level": "notice",
                          "text": "/Stage[main]/App/File[/srv/app/release-%d]/ensure: created"
                                  % (k + 1)} for k in range(args.lines - 1)]
                lines.insert(0, {"level": "info", "text": "Applying configuration version '%d'"
                                                          % (T0 // 1000)})
                s.emit("output", node=n, lines=lines, skipped=0)
        elif n in fail:
            state[n] = "failed"
            s.change(node=n, group=g, state="failed", locked=True, verdict="failed_resources",
                     exit_code=6,
                     reason="1 of 12 resources failed; exit 6 (changes and failures); "
                            "matched by job_id %s" % args.job,
                     failed=["Exec[migrate %s]" % n.split(".")[0]])
        else:
            state[n] = "succeeded"
            s.change(node=n, group=g, state="succeeded", locked=True, verdict="changed",
                     exit_code=2,
                     reason="3 resources changed; exit 2 (changes); matched by job_id %s"
                            % args.job)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=10000)
    ap.add_argument("--groups", type=int, default=4)
    ap.add_argument("--rate", type=float, default=20000.0, help="node state changes a second")
    ap.add_argument("--seconds", type=float, default=0.0,
                    help="run rounds until this much stream time (0: one round)")
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--fail", type=float, default=1.0, help="percent of nodes that fail")
    ap.add_argument("--lines", type=int, default=2, help="output lines per run (0: none)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--job", default="SIM1")
    ap.add_argument("-o", "--output", default="-")
    args = ap.parse_args()
    if args.nodes < 1 or args.groups < 1 or args.rate <= 0 or args.batch < 0:
        ap.error("--nodes and --groups must be at least 1, --rate above 0, --batch not negative")
    args.groups = min(args.groups, args.nodes)

    rng = random.Random(args.seed)
    out = sys.stdout if args.output == "-" else open(args.output, "w")
    s = Stream(out, args.job, args.rate)
    names = [node_name(i) for i in range(args.nodes)]
    groups = split(names, args.groups)
    fail = set(rng.sample(names, int(args.nodes * args.fail / 100)))
    group_of = {n: g for g, ns in enumerate(groups) for n in ns}

    s.emit("plan", groups=len(groups), caller="bench.mcollective", environment="production",
           options={"batch": args.batch, "canary": 0, "max_failures": -1,
                    "max_failures_pct": False, "contain": False, "noop": False,
                    "start_timeout_s": 120, "run_timeout_s": 1800},
           nodes=[{"node": n, "group": group_of[n], "apps": "App[shop%d]" % (group_of[n] + 1),
                   "state": "waiting", "reason": "", "verdict": "", "locked": False, "step": 0}
                  for n in names])
    s.emit("job", state="preflight", reason="asking %d nodes for their status" % args.nodes)
    s.emit("preflight", nodes=args.nodes, problems=[])
    s.emit("job", state="locking", reason="disabling Puppet on %d nodes" % args.nodes)
    s.emit("job", state="running", reason="running %d nodes in %d groups"
           % (args.nodes, len(groups)))
    state = {}
    step = 0
    rounds = 0
    end = T0 + args.seconds * 1000.0
    while True:
        rounds += 1
        for g, members in enumerate(groups):
            for batch in (split(members, -(-len(members) // args.batch)) if args.batch
                          else [members]):
                step += 1
                run_step(s, rng, args, g, step, batch, fail, state)
        if s.t >= end:
            break
        actor = "user bench (uid 1000, pid 4242)"
        s.emit("operator", actor=actor, command="retry", reply="ok: %d nodes will run again"
               % args.nodes)
        for n in names:
            s.change(node=n, group=group_of[n], state="waiting", reason="retry", locked=True)
    failed = sum(1 for v in state.values() if v == "failed")
    final = "failed" if failed else "succeeded"
    reason = ("%d of %d nodes failed" % (failed, args.nodes) if failed
              else "%d nodes succeeded" % args.nodes)
    s.emit("job", state=final, reason=reason)
    s.emit("result", state=final, reason=reason, exit_code=1 if failed else 0,
           elapsed_ms=int(s.t - T0), nodes=args.nodes, succeeded=args.nodes - failed,
           failed=failed, skipped=0, not_reached=0, locked=failed)
    if out is not sys.stdout:
        out.close()
    print("gen_stream: %d nodes, %d groups, %d steps, %d rounds, %d state changes over %.1f s"
          % (args.nodes, len(groups), step, rounds, s.changes, (s.t - T0) / 1000.0),
          file=sys.stderr)


if __name__ == "__main__":
    main()
