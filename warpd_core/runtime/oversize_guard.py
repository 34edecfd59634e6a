"""When to stop listening to a policy topic that floods the controller with oversized messages.

The controller refuses a PolicyWeights too large for its compute budget by the message's length,
before decoding it; but receiving it is not free. While a reader is matched, the transport moves and
reassembles every byte in the controller's process: on the 2-core benchmark machine 8 MB messages
at 10/s took the 1 kHz loop to 768 Hz although every one was refused (bench.compute_budget), while
the same messages on a topic nobody read left it at 989 Hz. So a flood is answered by not being a
reader for a while: after `trip_count` oversized messages within `window_s` the controller drops its
policy subscription for a pause and then subscribes again. An oversized message within `window_s`
of listening again trips at once with the pause doubled (up to `max_pause_s`); `calm_s` without a
trip starts the pause over. A lone oversized message is refused and nothing more.

Pure bookkeeping on a clock the caller passes (seconds), so it is tested without ROS.
"""
from __future__ import annotations

from collections import deque


class OversizeGuard:
    def __init__(self, pause_s: float, trip_count: int = 3, window_s: float = 1.0, max_pause_s: float = 60.0,
                 calm_s: float = 60.0):
        if pause_s < 0 or trip_count < 1 or window_s <= 0 or max_pause_s < pause_s or calm_s <= 0:
            raise ValueError(f"bad oversize guard: pause {pause_s} s, {trip_count} within {window_s} s, "
                             f"max pause {max_pause_s} s, calm {calm_s} s")
        self.pause_s, self.trip_count, self.window_s = float(pause_s), int(trip_count), float(window_s)
        self.max_pause_s, self.calm_s = float(max_pause_s), float(calm_s)
        self.trips = 0
        self._next_pause = self.pause_s
        self._recent: deque[float] = deque()
        self._listening_since: float | None = None  # when the last pause ended
        self._last_trip: float | None = None

    @property
    def enabled(self) -> bool:
        return self.pause_s > 0

    def oversized(self, now_s: float) -> float | None:
        """An oversized message arrived at `now_s`: the pause to take now (s), or None to keep listening."""
        if not self.enabled:
            return None
        if self._last_trip is not None and now_s - self._last_trip > self.calm_s:
            self._next_pause = self.pause_s  # calm for long enough: a new flood starts from the first pause
        recent = self._recent
        recent.append(now_s)
        while recent and now_s - recent[0] > self.window_s:
            recent.popleft()
        just_back = self._listening_since is not None and now_s - self._listening_since <= self.window_s
        if not just_back and len(recent) < self.trip_count:
            return None
        pause = self._next_pause
        self._next_pause = min(2.0 * pause, self.max_pause_s)
        self._last_trip, self._listening_since = now_s, None
        recent.clear()
        self.trips += 1
        return pause

    def listening_again(self, now_s: float) -> None:
        """The pause is over and the subscription is back (at `now_s`)."""
        self._listening_since = now_s
