"""The page's reset token, checked so that guessing it is slow (Python 3.7 compatible).

After :data:`FREE` wrong tokens from one client address, that address waits before each
further try: 1 s, doubling to 5 min, answered 429 with ``Retry-After`` without comparing
anything. A right token clears its address. At most :data:`CLIENTS` addresses are
remembered (the longest quiet forgotten first), so a flood of addresses cannot grow it.
"""

import collections
import hmac
import threading
import time

FREE = 5
FIRST_WAIT, MAX_WAIT = 1.0, 300.0
CLIENTS = 1024


class TokenGuard(object):
    """``check(address, given)`` -> ``(ok, retry_after)``; ``retry_after`` seconds when that
    address must wait (then ``ok`` is False and nothing was compared)."""

    def __init__(self, token, clock=time.monotonic):
        self._token = token.encode("ascii")
        self.clock = clock
        self._lock = threading.Lock()
        self._failures = collections.OrderedDict()  # address -> (wrong tokens, not before)

    def check(self, address, given):
        now = self.clock()
        with self._lock:
            wrong, not_before = self._failures.get(address, (0, 0.0))
            if now < not_before:
                return False, not_before - now
            if hmac.compare_digest(given.encode("utf-8", "replace"), self._token):
                self._failures.pop(address, None)
                return True, None
            wrong += 1
            wait = 0.0 if wrong < FREE else min(MAX_WAIT, FIRST_WAIT * 2 ** (wrong - FREE))
            self._failures[address] = (wrong, now + wait)
            self._failures.move_to_end(address)
            while len(self._failures) > CLIENTS:
                self._failures.popitem(last=False)
            return False, None
