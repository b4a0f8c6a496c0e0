"""Ctrl-C for the tests of interruptible runs: a real SIGINT to the main thread after a delay,
pressed again every `again` seconds until the run has stopped, as a user would.  A lone press can
be lost through no fault of the code under test (Python drops an exception raised inside a
finalizer or a weakref callback, and the signal lands wherever the main thread happens to be), and
a test that waits for a lost press runs for its whole long run instead of failing.

    with CtrlC(after=0.3) as ctrl_c:
        with pytest.raises(KeyboardInterrupt):
            long_run()
    assert ctrl_c.latency < 1.0  # seconds from the first press to the KeyboardInterrupt
"""
from __future__ import annotations

import signal
import threading
import time


class CtrlC:
    def __init__(self, after: float, again: float = 0.25):
        self.after, self.again = after, again
        self.first_press = None
        self.latency = None
        self._stop = threading.Event()
        self._main = threading.main_thread().ident
        self._thread = threading.Thread(target=self._press, daemon=True)

    def _press(self):
        if self._stop.wait(self.after):
            return
        self.first_press = time.perf_counter()
        while True:
            signal.pthread_kill(self._main, signal.SIGINT)
            if self._stop.wait(self.again):
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        stopped = time.perf_counter()
        while True:
            try:
                self._stop.set()
                self._thread.join()
                time.sleep(0.01)  # a press made just before the stop is delivered here
                break
            except KeyboardInterrupt:
                continue
        if self.first_press is not None:
            self.latency = stopped - self.first_press
        return False
