"""Parsing the value forms users type: sizes, counts, hugepage sizes, platforms, grids.

Sizes follow QEMU's ``-m`` convention: ``K``/``M``/``G``/``T`` and ``KiB``/``MiB``/``GiB``/
``TiB`` are binary (powers of 1024); ``KB``/``MB``/``GB``/``TB`` are decimal (powers of 1000),
as the SI prefixes say; a plain number is bytes.

Every parser takes ``where`` (the flag, parameter or file position being parsed) so that its
error names it: ``--memory: got '16GB?'; expected a size such as 16GiB, 16G, 512MiB or bytes``.
Use it module-qualified: ``parse.size("16GiB", "memory")``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from costmodel.errors import Argument, InputError, closest
from costmodel.units import HUGEPAGE_SIZES, GiB, KiB, MiB, TiB

_SIZE_FACTORS = {
    "": 1, "b": 1,
    "k": KiB, "kib": KiB, "m": MiB, "mib": MiB, "g": GiB, "gib": GiB, "t": TiB, "tib": TiB,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
}
_SIZE_RE = re.compile(r"^\s*(?P<num>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[a-zA-Z]*)\s*$")

#: Confidential-computing platforms: AMD SEV-SNP and Intel TDX.
PLATFORMS = ("snp", "tdx")

SIZE_FORMS = "a size such as 16GiB, 16G, 512MiB, 4K or plain bytes"


#: The largest size or count any input may have: what an int64 column holds. [1]
INT64_MAX = 2**63 - 1
#: Digits a typed number may have (more cannot be within int64 in any unit).
_MAX_DIGITS = 40


def size(value: object, where: str = "size") -> int:
    """Parse a size into bytes. [B]

    Accepts an int, or text such as ``16GiB``, ``16G``, ``16GB`` (decimal), ``512MiB``,
    ``4K``, ``1.5G`` (when it is a whole number of bytes) or ``17179869184``.
    Raises :class:`InputError` for anything else, including zero and negative sizes and
    sizes past :data:`INT64_MAX` bytes (computed exactly, never rounded through a double).
    """
    from fractions import Fraction

    if isinstance(value, bool):
        raise InputError(where, value, SIZE_FORMS)
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        number, factor, text = Fraction(value), 1, value
    else:
        text = str(value)
        match = _SIZE_RE.match(text)
        if not match or match["unit"].lower() not in _SIZE_FACTORS:
            raise InputError(where, text, SIZE_FORMS)
        if len(match["num"]) > _MAX_DIGITS:
            raise InputError(where, text[:60] + "…", SIZE_FORMS + f" (at most {INT64_MAX} bytes)")
        number, factor = Fraction(match["num"]), _SIZE_FACTORS[match["unit"].lower()]
    size = number * factor
    if size <= 0:
        raise InputError(where, text, SIZE_FORMS + " (greater than zero)")
    if size.denominator != 1:
        raise InputError(where, text, SIZE_FORMS + " (a whole number of bytes)")
    if size > INT64_MAX:
        raise InputError(where, text, SIZE_FORMS + f" (at most {INT64_MAX} bytes, 8 EiB)")
    return int(size)


def count(value: object, where: str = "count", minimum: int = 1, maximum: int = INT64_MAX) -> int:
    """Parse a whole number from ``minimum`` to ``maximum`` (vCPUs, virtqueues). [1]"""
    expected = f"a whole number ≥ {minimum}" if maximum == INT64_MAX else f"a whole number from {minimum} to {maximum}"
    if isinstance(value, bool):
        raise InputError(where, value, expected)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not re.fullmatch(r"[+]?[0-9]+", text):
            raise InputError(where, str(value)[:60], expected)
        if len(text) > _MAX_DIGITS:
            raise InputError(where, text[:60] + "…", f"{expected} (at most {maximum})")
        number = int(text)
    if number < minimum:
        raise InputError(where, value, expected)
    if number > maximum:
        raise InputError(where, value, f"{expected} (at most {maximum})")
    return number


def hugepage(value: object, where: str = "hugepage") -> int:
    """Parse a hugepage size (``4K``, ``2M``, ``1G`` or their byte counts). [B]"""
    expected = "one of 4K, 2M, 1G (4K means no hugepages)"
    try:
        parsed = size(value, where)
    except InputError:
        raise InputError(where, str(value), expected) from None
    if parsed not in HUGEPAGE_SIZES:
        raise InputError(where, str(value), expected)
    return parsed


def platform(value: object, where: str = "platform") -> str:
    """Parse a platform name: ``snp`` (AMD SEV-SNP) or ``tdx`` (Intel TDX)."""
    text = str(value).strip().lower()
    if text not in PLATFORMS:
        raise InputError(where, str(value), "one of " + ", ".join(PLATFORMS))
    return text


def choice(value: object, choices: Sequence[str], where: str) -> str:
    """Parse one of ``choices``; the error lists them, closest first."""
    text = str(value).strip()
    if text not in choices:
        raise InputError(where, text, "one of " + ", ".join(closest(text, choices, n=len(choices))))
    return text


def grid(value: object, parse_one, where: str) -> list:
    """Parse a single value, a list ``1,2,4,8``, or a range ``START:STOP[:STEP]``.

    ``STEP`` is ``+k`` (or ``k``) for arithmetic steps and ``xk`` for geometric ones
    (``1:256:x2`` gives 1, 2, 4, …, 256); without it the step is +1. ``STOP`` is included
    when the steps land on it. Each element is parsed by ``parse_one(text, where)``.
    """
    text = str(value).strip()
    if "," in text:
        return [parse_one(part, where) for part in text.split(",")]
    if ":" not in text:
        return [parse_one(text, where)]
    parts = text.split(":")
    expected = "START:STOP[:STEP] with STEP +k or xk (e.g. 1:256:x2)"
    if len(parts) not in (2, 3):
        raise InputError(where, text, expected)
    start, stop = parse_one(parts[0], where), parse_one(parts[1], where)
    step = parts[2].strip() if len(parts) == 3 else "+1"
    geometric = step[:1].lower() == "x"
    try:
        amount = float(step[1:] if step[:1] in "x+X" else step)
    except ValueError:
        raise InputError(where, text, expected) from None
    if not math.isfinite(amount):
        raise InputError(where, text, expected + ", with a finite step")
    if stop < start or amount <= (1 if geometric else 0):
        raise InputError(where, text, expected + ", STOP ≥ START and a step that grows")
    values, current = [], start
    while current <= stop:
        values.append(current)
        current = current * amount if geometric else current + amount
        current = int(round(current)) if float(current).is_integer() else current
        if len(values) > 100_000:
            raise InputError(where, text, "a range of at most 100000 values")
    return [parse_one(v, where) for v in values]


def device(value: object, where: str = "device"):
    """Parse ``KIND[:queues=Q,size=S,layout=split|packed]`` into a :class:`~costmodel.model.kernel.Device`.

    Kinds: virtio-blk, virtio-net (``queues`` = queue pairs), virtio-scsi, virtio-vsock
    (three fixed queues), nvme (``queues`` = I/O queue pairs, ``size`` = queue depth) and
    virtio (generic). Queue sizes are powers of two from 2 to 32768.
    """
    from costmodel.model.kernel import DEVICE_KINDS, QUEUE_SIZE_MAX, Device

    def at(detail: str):
        """``where`` narrowed to a part of the spec (an Argument stays one, for the CLI's flag)."""
        if isinstance(where, Argument):
            return Argument(where.name, f"{where.detail} {detail}".strip())
        return f"{where} {detail}"

    text = str(value).strip()
    expected = "KIND[:queues=Q,size=S,layout=split|packed] with KIND one of " + ", ".join(DEVICE_KINDS)
    kind, _, options = text.partition(":")
    kind = kind.strip().lower()
    if kind not in DEVICE_KINDS:
        raise InputError(where, text, "a device kind: " + ", ".join(closest(kind, DEVICE_KINDS, len(DEVICE_KINDS)))
                         + " (" + expected + ")")
    fields: dict = {}
    for item in [o for o in options.split(",") if o.strip()] if options else []:
        key, sep, raw = item.partition("=")
        key, raw = key.strip().lower(), raw.strip()
        if not sep or key not in ("queues", "size", "layout"):
            raise InputError(at(f"{kind}"), item.strip(), "queues=Q, size=S or layout=split|packed")
        if key in fields:
            raise InputError(at(f"{kind}"), item.strip(), f"{key} given once")
        if key == "layout":
            fields[key] = choice(raw.lower(), ("split", "packed"), at(f"{kind} layout"))
        elif key == "queues":
            if kind == "virtio-vsock":
                raise InputError(at(f"{kind}"), item.strip(), "no queues= (vsock has 3 fixed queues)")
            fields[key] = count(raw, at(f"{kind} queues"))
        else:
            number = count(raw, at(f"{kind} size"), minimum=2)
            if number > QUEUE_SIZE_MAX or number & (number - 1):
                raise InputError(at(f"{kind} size"), raw, f"a power of two from 2 to {QUEUE_SIZE_MAX}")
            fields[key] = number
    if kind == "nvme" and fields.get("layout") == "packed":
        raise InputError(at(f"{kind}"), "layout=packed", "no layout for nvme (its queues are not virtqueues)")
    return Device(kind, fields.get("queues"), fields.get("size"), fields.get("layout", "split"))


def boolean(value: object, where: str = "flag") -> bool:
    """Parse ``on/off``, ``yes/no``, ``true/false``, ``1/0``."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "on", "yes", "true"):
        return True
    if text in ("0", "off", "no", "false"):
        return False
    raise InputError(where, str(value), "on or off (also yes/no, true/false, 1/0)")


#: Most values a YAML document may expand to, aliases followed (a 4 KB file of nested
#: aliases otherwise expands to billions: "billion laughs"). [values]
MAX_YAML_VALUES = 100_000


def yaml_budget(loaded: object, where: str, limit: int = MAX_YAML_VALUES) -> object:
    """``loaded`` (from ``yaml.safe_load``) if, with every alias expanded, it holds at most
    ``limit`` values and no alias refers to itself; :class:`InputError` otherwise."""
    counted: dict[int, int] = {}

    def size(value, open_: set[int]) -> int:
        if not isinstance(value, (list, dict)):
            return 1
        key = id(value)
        if key in open_:
            raise InputError(where, "a YAML alias that contains itself", "YAML without recursive aliases")
        if key in counted:
            return counted[key]
        open_.add(key)
        items = list(value.items()) if isinstance(value, dict) else value
        total = 1
        for item in items:
            total += sum(size(v, open_) for v in item) if isinstance(value, dict) else size(item, open_)
            if total > limit:
                raise InputError(where, f"a document of more than {limit} values (aliases expanded)",
                                 f"at most {limit} values")
        open_.discard(key)
        counted[key] = total
        return total

    size(loaded, set())
    return loaded
