"""Ctrl-C for the tests of interruptible runs: one SIGINT to the main thread after a delay, with
Python's own SIGINT handler in place meanwhile.  A process started in the background of a
non-interactive shell inherits SIGINT ignored, and Python then installs no handler: neither a
real Ctrl-C nor _thread.interrupt_main raises KeyboardInterrupt there, and a test that waits for
one would run for its whole long run instead of failing.

    with CtrlC(after=0.3) as ctrl_c:
        with pytest.raises(KeyboardInterrupt):
            long_run()
    assert ctrl_c.latency < 1.0  # seconds from the press to the KeyboardInterrupt
"""
from __future__ import annotations

import signal
import threading
import time


class CtrlC:
    def __init__(self, after: float):
        self.after = after
        self.pressed = None
        self.latency = None
        self._cancel = threading.Event()
        self._main = threading.main_thread().ident
        self._thread = threading.Thread(target=self._press, daemon=True)
        self._saved = None

    def _press(self):
        if not self._cancel.wait(self.after):
            self.pressed = time.perf_counter()
            signal.pthread_kill(self._main, signal.SIGINT)

    def __enter__(self):
        self._saved = signal.signal(signal.SIGINT, signal.default_int_handler)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        stopped = time.perf_counter()
        self._cancel.set()
        self._thread.join()
        signal.signal(signal.SIGINT, self._saved)
        if self.pressed is not None:
            self.latency = stopped - self.pressed
        return False
