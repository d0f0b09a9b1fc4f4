"""Reader of QEMU's ``kvm_convert_memory`` trace events.

QEMU declares the event in ``accel/kvm/trace-events`` as::

    kvm_convert_memory(uint64_t start, uint64_t size, const char *msg) "start 0x%" PRIx64 " size 0x%" PRIx64 " %s"

and ``kvm_convert_memory()`` in ``accel/kvm/kvm-all.c`` passes ``msg`` as
``"shared_to_private"`` or ``"private_to_shared"``. With the ``log`` trace backend
(``-trace enable=kvm_convert_memory,file=FILE``) each event is one line, prefixed with
``TID@SECONDS.MICROSECONDS:`` when QEMU runs with ``-msg timestamp=on``. Other events and
other output in the same file are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

EVENT = "kvm_convert_memory"
_LINE = re.compile(
    r"(?:^|[\s:])kvm_convert_memory\s+start\s+0x(?P<start>[0-9a-fA-F]+)\s+"
    r"size\s+0x(?P<size>[0-9a-fA-F]+)\s+(?P<msg>\S+)")
_DIRECTIONS = {"private_to_shared": "to_shared", "shared_to_private": "to_private"}


@dataclass
class QemuTrace:
    """Conversions QEMU handled, by direction.

    Attributes
    ----------
    conversions : dict
        ``direction → count`` (``to_shared``, ``to_private``). [1]
    bytes : dict
        ``direction → bytes converted``. [B]
    sizes : dict
        ``(direction, size) → count``.
    malformed : list
        Line numbers naming the event whose fields could not be read.
    """

    path: str
    conversions: dict = field(default_factory=lambda: {"to_shared": 0, "to_private": 0})
    bytes: dict = field(default_factory=lambda: {"to_shared": 0, "to_private": 0})
    sizes: dict = field(default_factory=dict)
    events: int = 0
    malformed: list = field(default_factory=list)
    unknown_directions: dict = field(default_factory=dict)

    @property
    def messages(self) -> list[str]:
        out = []
        if self.malformed:
            shown = ", ".join(str(n) for n in self.malformed[:5])
            out.append(f"{self.path}: skipped {len(self.malformed)} {EVENT} line(s) not of the form "
                       f"'{EVENT} start 0x… size 0x… private_to_shared|shared_to_private' "
                       f"(line {shown}{', …' if len(self.malformed) > 5 else ''})")
        if self.unknown_directions:
            kinds = ", ".join(f"{k} ×{n}" for k, n in sorted(self.unknown_directions.items()))
            out.append(f"{self.path}: skipped {EVENT} events with unknown direction ({kinds}); "
                       "expected private_to_shared or shared_to_private")
        return out


def looks_like_qemu_trace(text: str) -> bool:
    return EVENT in text


def parse_qemu_trace(text: str, path: str = "<qemu trace>") -> QemuTrace:
    """Count ``kvm_convert_memory`` events and bytes by direction."""
    trace = QemuTrace(path)
    for number, line in enumerate(text.splitlines(), start=1):
        if EVENT not in line or line.lstrip().startswith("#"):
            continue
        match = _LINE.search(line)
        if not match:
            trace.malformed.append(number)
            continue
        direction = _DIRECTIONS.get(match["msg"])
        if direction is None:
            trace.unknown_directions[match["msg"]] = trace.unknown_directions.get(match["msg"], 0) + 1
            continue
        size = int(match["size"], 16)
        trace.events += 1
        trace.conversions[direction] += 1
        trace.bytes[direction] += size
        trace.sizes[(direction, size)] = trace.sizes.get((direction, size), 0) + 1
    return trace
