"""A clock that tests move by hand: ``clock()`` reads it, ``clock.sleep(s)`` moves it on."""

T0 = 1700000000.0


class FakeClock:
    """``clock()`` and ``sleep(s)`` for code with injected time; sleeping moves time forward."""

    def __init__(self, t=T0):
        self.t = t
        self.sleeps = []

    def __call__(self):
        return self.t

    def sleep(self, seconds):
        assert seconds >= 0
        self.sleeps.append(round(seconds, 6))
        self.t += seconds
