"""What the fault-tolerance tests share (faults.py, elastic.py, snapshot_layouts.py): a clean work
directory, the environment of a job that is not a restart, the check log, and reading a --log-json file."""
import json
import os
import shutil


def fresh_work(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


def job_env(**extra):
    """mpirun as root, and none of tessera-run's variables left over from an outer run."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", **extra)
    for k in ("TESSERA_FAULT_LOG", "TESSERA_RESTART"):
        env.pop(k, None)
    return env


class Checks:
    """ok/FAIL lines; exit status 1 when any failed."""

    def __init__(self):
        self.failures = []

    def __call__(self, ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            self.failures.append(what)

    def finish(self, passed):
        print("FAILED: " + "; ".join(self.failures) if self.failures else passed)
        return 1 if self.failures else 0


def read_log(path, lines=None):
    """step → (loss, grad_norm) as logged last (a redone step's later line wins), and the events; with
    `lines` (a dict), also step → every line logged for it."""
    steps, events = {}, []
    with open(path) as f:
        for line in f:
            j = json.loads(line)
            if "event" in j:
                events.append(j)
            elif "step" in j:
                steps[j["step"]] = (j["loss"], j["grad_norm"])
                if lines is not None:
                    lines.setdefault(j["step"], []).append(j)
    return steps, events
