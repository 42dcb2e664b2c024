"""kill -9 while a process appends to the interaction log loses at most the entry in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from recagents.data.feedback import FeedbackLog, LogEntry

ROOT = Path(__file__).resolve().parents[2]

# Appends one entry at a time (a long message, so a write takes a while) and reports each one
# on stdout only after ``append`` returned: what was acknowledged must be in the log.
WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from recagents.data.feedback import FeedbackLog, LogEntry

    log = FeedbackLog(Path(sys.argv[1]))
    words = "words " * 20000
    n = int(sys.argv[2])
    while True:
        log.append([LogEntry(thread_id=f"t{n % 7}", time=float(n), catalog="blocks",
                             message=f"{n} {words}", liked=(f"i{n % 32}",))])
        print(n, flush=True)
        n += 1
    """
)


def test_sigkill_mid_append_loses_at_most_the_entry_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "home" / "feedback" / "log.jsonl"
    for attempt in range(3):  # three kills at different moments, on the same log
        first = attempt * 100_000  # each writer numbers its entries from its own start
        process = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(first)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert process.stdout is not None
        acknowledged: list[int] = []
        deadline = time.monotonic() + 60
        while len(acknowledged) < 20 + 7 * attempt and time.monotonic() < deadline:
            acknowledged.append(int(process.stdout.readline()))
        os.kill(process.pid, signal.SIGKILL)  # while it is in the loop, likely mid-write
        process.wait(30)
        acknowledged += [int(line) for line in process.stdout.read().split()]
        assert len(acknowledged) >= 20, "the writer never got going"

        result = FeedbackLog(path).read()
        numbers = {
            int(e.message.split()[0])
            for e in result.entries
            if first <= int(e.message.split()[0]) < first + 100_000
        }
        assert set(acknowledged) <= numbers, "an acknowledged entry was lost"
        assert len(numbers - set(acknowledged)) <= 1, "more than the entry in flight"
        assert len(result.skipped) <= attempt + 1, "more than one torn line per kill"

    # The reader survives a torn tail, and the next append still works.
    with open(path, "ab") as handle:
        handle.write(b'{"v":1,"thread_id":"torn","time":1.0,"catal')
    log = FeedbackLog(path)
    before = log.read()
    assert before.skipped[-1][1].startswith("torn")
    log.append([LogEntry(thread_id="after", time=1.0, catalog="x", liked=("i1",))])
    after = log.read()
    assert after.entries == [*before.entries, after.entries[-1]]
    assert after.entries[-1].thread_id == "after"
    assert len(after.skipped) == len(before.skipped)
