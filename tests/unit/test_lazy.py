"""The adapters' cached property: one value per instance, instances not waiting for one another."""

from __future__ import annotations

import threading
import time

from omsup.adapters.lazy import cached


class Slow:
    def __init__(self, name: str, meet: threading.Event, other: threading.Event) -> None:
        self.name, self.meet, self.other, self.calls = name, meet, other, 0

    @cached
    def client(self) -> str:
        self.calls += 1
        self.meet.set()  # this instance is connecting now ...
        met = self.other.wait(5)  # ... and the other one at the same time (not after it)
        return f"{self.name}:{'side by side' if met else 'one after the other'}"


def test_instances_connect_side_by_side():
    a_in, b_in = threading.Event(), threading.Event()
    a, b = Slow("a", a_in, b_in), Slow("b", b_in, a_in)
    seen: dict[str, str] = {}
    threads = [threading.Thread(target=lambda o=o: seen.__setitem__(o.name, o.client)) for o in (a, b)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert seen == {"a": "a:side by side", "b": "b:side by side"}
    assert time.monotonic() - t0 < 5  # neither waited out the other's 5 s


def test_one_instance_computes_once_and_keeps_it():
    gate, never = threading.Event(), threading.Event()
    never.set()
    o = Slow("o", gate, never)
    seen: list[str] = []
    threads = [threading.Thread(target=lambda: seen.append(o.client)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert seen == ["o:side by side"] * 8 and o.calls == 1
    del o.__dict__["client"]  # what the adapters' close() does: the next use computes it anew
    assert o.client == "o:side by side" and o.calls == 2
    o.__dict__["client"] = "put there"  # a test may put a client in place
    assert o.client == "put there" and o.calls == 2
