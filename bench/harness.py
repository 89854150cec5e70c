#!/usr/bin/python3
"""Times commands against their floors, interleaved.

    harness.py LAUNCH JOBS.json OUT.json

JOBS.json is a list of jobs:

    {"id": "fs/proc/version.o", "size": 12345, "reps": 5, "cwd": "/dir",
     "env": {"VAR": "value"},
     "cmds": [{"name": "diff", "argv": [...],
               "prep": [["copy", SRC, DST], ["copyeach", GLOB, SUFFIX],
                        ["remove", PATH], ["sh", CMD]]},
              {"name": "floor", "argv": [...]}]}

Each repetition runs every command of the job once, in an order that
alternates from one repetition to the next (so that a burst of load from
elsewhere on the machine falls on the command and its floor alike). Before
each timed run the command's "prep" steps run, untimed. Each run goes
through LAUNCH (launch.c, compiled by bench/run), which times it from just
before posix_spawn to the return of wait4 and reports wait4's user and
system time and peak resident set size of the process (with its waited-for
descendants). stdout and stderr go to /dev/null; a non-zero exit status is
recorded, not fatal.

OUT.json maps each job id to {"size": ..., "runs": {name: [[wall_s, user_s,
sys_s, maxrss_kb, status], ...]}}.
"""

import fcntl
import glob
import json
import os
import shutil
import subprocess
import sys
import time


def prep(steps, cwd):
    for step in steps:
        kind = step[0]
        if kind == "copy":
            shutil.copyfile(os.path.join(cwd, step[1]), os.path.join(cwd, step[2]))
        elif kind == "remove":
            try:
                os.unlink(os.path.join(cwd, step[1]))
            except FileNotFoundError:
                pass
        elif kind == "copyeach":  # ["copyeach", GLOB, SUFFIX]: each FILE to FILE+SUFFIX
            for path in glob.glob(os.path.join(cwd, step[1])):
                shutil.copyfile(path, path + step[2])
        elif kind == "sh":
            subprocess.run(["sh", "-c", step[1]], cwd=cwd, check=True)
        else:
            raise SystemExit(f"harness: unknown prep step {step!r}")


def run_once(launch, argv, env):
    """One timed run through the launcher (see launch.c), which measures
    the process itself; returns [wall, user, sys, maxrss_kb, status]."""
    def high(fd):
        # Above 3, so that the dup2 onto 3 below clobbers none of them.
        new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        return new

    devnull = high(os.open(os.devnull, os.O_WRONLY))
    rfd, wfd = (high(fd) for fd in os.pipe())
    actions = [
        (os.POSIX_SPAWN_DUP2, devnull, 1),
        (os.POSIX_SPAWN_DUP2, devnull, 2),
        (os.POSIX_SPAWN_DUP2, wfd, 3),
        (os.POSIX_SPAWN_CLOSE, devnull),
        (os.POSIX_SPAWN_CLOSE, rfd),
    ]
    pid = os.posix_spawn(launch, [launch] + argv, env, file_actions=actions)
    os.close(wfd)
    os.close(devnull)
    data = b""
    while True:
        chunk = os.read(rfd, 4096)
        if not chunk:
            break
        data += chunk
    os.close(rfd)
    _, status, _ = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not data:
        raise SystemExit(f"harness: cannot run {argv!r} (launcher status {status})")
    wall, user, sys_, rss, code = data.split()
    return [float(wall), float(user), float(sys_), int(rss), int(code)]


def main():
    launch, jobs_path, out_path = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(jobs_path) as f:
        jobs = json.load(f)
    out = {}
    total = len(jobs)
    start = time.time()
    for n, job in enumerate(jobs):
        cwd = job.get("cwd", os.getcwd())
        env = dict(os.environ)
        env.update(job.get("env", {}))
        os.chdir(cwd)
        cmds = job["cmds"]
        runs = {c["name"]: [] for c in cmds}
        for rep in range(job.get("reps", 5)):
            order = cmds if rep % 2 == 0 else list(reversed(cmds))
            for c in order:
                prep(c.get("prep", []), cwd)
                runs[c["name"]].append(run_once(launch, c["argv"], env))
        out[job["id"]] = {"size": job.get("size", 0), "runs": runs}
        if (n + 1) % 200 == 0 or n + 1 == total:
            print(f"  {n + 1}/{total} ({time.time() - start:.0f} s)", file=sys.stderr, flush=True)
    with open(out_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
