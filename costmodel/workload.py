"""The workload: what a confidential guest does after boot, beside its :class:`~costmodel.shape.VmShape`.

:class:`Workload` holds the run-time inputs of docs/runtime.md (I/O in flight, the
``CONFIG_SWIOTLB_DYNAMIC`` switch, coherent churn, accelerators, attestation requests, the
firmware pool's release, a flip rate, a duration and a job count). Its defaults are the
boot-only model: with ``Workload()`` every boot output is what it was before run time was
modelled, and every run-time output is zero. :meth:`Workload.to_columns` gives the model's
workload inputs (:data:`WORKLOAD_INPUTS`), which :func:`costmodel.compiled.configurations`
takes as optional columns.

Spec forms (each parser names ``where`` in its errors):

* accelerator ``gpu[:count=N,unprotected=SIZE,chunk=SIZE,staging=K,tdisp=0|1]``;
* I/O in flight ``SIZE`` or ``REQUESTSxSIZE`` (``128x256KiB``), optionally ``LABEL=`` first;
* churn ``RATE[/s|/job][:size=SIZE]``; flip rate ``RATE[:isolated]``; duration ``SECONDS``
  or ``30s``, ``10m``, ``2h``, ``1d``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from costmodel import parse
from costmodel.errors import Argument, InputError
from costmodel.units import PAGE_SIZE, MiB

#: The model inputs a workload sets, with their boot-only defaults (variables.py, kind input).
WORKLOAD_DEFAULTS = {
    "io_in_flight_bytes": 0.0, "swiotlb_dynamic": 0.0, "churn_per_second": 0.0, "churn_per_job": 0.0,
    "churn_bytes": float(PAGE_SIZE), "accelerator_unprotected_bytes": 0.0, "accelerator_chunks": 0.0,
    "accelerator_chunk_ops_snp": 0.0, "accelerator_chunk_ops_tdx": 0.0, "accelerator_staging_buffers": 0.0, "attestation_rate": 0.0, "firmware_release": 1.0, "flip_rate": 0.0,
    "flip_isolated": 0.0, "duration_seconds": 0.0, "jobs": 0.0,
}
WORKLOAD_INPUTS = tuple(WORKLOAD_DEFAULTS)
ACCELERATOR_KINDS = ("gpu",)
ACCELERATOR_KEYS = ("count", "unprotected", "chunk", "staging", "tdisp")
#: Largest block alloc_pages() gives (2^MAX_PAGE_ORDER pages). [B]
MAX_BLOCK = 4 * MiB
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def chunk_ops(size: int, is_snp: bool) -> int:
    """Conversion operations of one aligned block (domain.md §5): SNP page-state-change
    requests of 64 entries (2 MiB entries from 2 MiB up), TDX MapGPA pieces of ≤ 2 MiB. [1]"""
    if is_snp:
        unit = 2 * MiB if size >= 2 * MiB else PAGE_SIZE
        return math.ceil(size / unit / 64)
    return math.ceil(size / (2 * MiB))


def _at(where, detail: str):
    if isinstance(where, Argument):
        return Argument(where.name, f"{where.detail} {detail}".strip())
    return f"{where} {detail}"


def rate(value, where="rate") -> float:
    """A finite number ≥ 0 (events per second, per job). [1/s]"""
    try:
        number = float(str(value).strip())
    except ValueError:
        raise InputError(where, str(value), "a number ≥ 0") from None
    if not math.isfinite(number) or number < 0:
        raise InputError(where, str(value), "a number ≥ 0")
    return number


def duration(value, where="duration") -> float:
    """Seconds, or a number with ``s``, ``m``, ``h`` or ``d``. [s]"""
    match = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([smhd]?)\s*", str(value))
    if not match:
        raise InputError(where, str(value), "a duration ≥ 0 such as 3600, 30s, 10m, 2h or 1d")
    return rate(match[1], where) * _DURATION_UNITS[match[2]]


@dataclass(frozen=True)
class Accelerator:
    """Accelerators of one kind (domain.md §9 Accelerators).

    Parameters
    ----------
    kind : str
        ``gpu`` (NVIDIA confidential-computing mode).
    count : int
        Devices. [1]
    unprotected_bytes : int
        Unprotected (shared) system memory per device. [B]
    chunk_bytes : int
        Size of each separately converted allocation: a power of two from 4 KiB to 4 MiB
        (4 KiB: page by page, as ``nv_alloc_system_pages()`` converts non-contiguous
        memory). [B]
    staging : int
        2 MiB staging buffers per device. [1]
    tdisp : bool
        Accepted under TDISP / TDX Connect / SEV-TIO: DMA into private memory, nothing converted.
    """

    kind: str = "gpu"
    count: int = 1
    unprotected_bytes: int = 0
    chunk_bytes: int = PAGE_SIZE
    staging: int = 0
    tdisp: bool = False

    def spec(self) -> str:
        return (f"{self.kind}:count={self.count},unprotected={self.unprotected_bytes},chunk={self.chunk_bytes},"
                f"staging={self.staging},tdisp={int(self.tdisp)}")


def accelerator(value, where="accelerator") -> Accelerator:
    """Parse ``gpu[:count=N,unprotected=SIZE,chunk=SIZE,staging=K,tdisp=0|1]``."""
    text = str(value).strip()
    kind, _, options = text.partition(":")
    kind = kind.strip().lower()
    expected = "gpu[:count=N,unprotected=SIZE,chunk=SIZE,staging=K,tdisp=0|1]"
    if kind not in ACCELERATOR_KINDS:
        raise InputError(where, text, expected)
    fields: dict = {}
    for item in [o for o in options.split(",") if o.strip()]:
        key, sep, raw = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in ACCELERATOR_KEYS:
            raise InputError(_at(where, kind), item.strip(), "keys " + ", ".join(ACCELERATOR_KEYS))
        if key in fields:
            raise InputError(_at(where, kind), item.strip(), f"{key} given once")
        part = _at(where, f"{kind} {key}")
        if key == "count":
            fields[key] = parse.count(raw, part)
        elif key == "staging":
            fields[key] = parse.count(raw, part, minimum=0)
        elif key == "tdisp":
            fields[key] = parse.boolean(raw, part)
        else:
            fields[key] = parse.size(raw, part)
    chunk = fields.get("chunk", PAGE_SIZE)
    if chunk < PAGE_SIZE or chunk > MAX_BLOCK or chunk & (chunk - 1):
        raise InputError(_at(where, f"{kind} chunk"), chunk, "a power of two from 4 KiB to 4 MiB (alloc_pages orders)")
    unprotected = fields.get("unprotected", 0)
    if unprotected and chunk > unprotected:
        raise InputError(_at(where, f"{kind} chunk"), chunk, f"at most the unprotected size ({unprotected} B)")
    if unprotected % chunk:
        raise InputError(_at(where, f"{kind} unprotected"), unprotected, f"a whole number of chunks of {chunk} B")
    return Accelerator(kind, fields.get("count", 1), unprotected, chunk, fields.get("staging", 0),
                       fields.get("tdisp", False))


def in_flight(value, where="io-in-flight") -> int:
    """Parse ``[LABEL=]SIZE`` or ``[LABEL=]REQUESTSxSIZE`` into bytes. [B]"""
    text = str(value).strip()
    body = text.split("=", 1)[1] if "=" in text else text
    requests, sep, size = body.partition("x") if re.match(r"^\s*[0-9]+\s*x", body) else ("1", "", body)
    return parse.count(requests, where) * parse.size(size, where)


@dataclass(frozen=True, kw_only=True)
class Workload:
    """What the guest does after boot; the defaults are boot only (docs/runtime.md).

    Parameters
    ----------
    io_in_flight_bytes : int
        Bounce-buffered I/O in flight at the peak, summed over devices. [B]
    swiotlb_dynamic : bool
        The kernel has ``CONFIG_SWIOTLB_DYNAMIC`` (adds ≤ 4 MiB pools when the pool is full).
    churn_per_second, churn_per_job : float
        Coherent allocate-and-free cycles per second [1/s] and per job [1].
    churn_bytes : int
        Size of each churned allocation. [B]
    accelerators : tuple of Accelerator
    attestations_per_second : float
        Attestation requests per second. [1/s]
    firmware_release : bool
        The firmware releases its reserved shared pool at ExitBootServices.
    flip_rate : float
        Round trips of the same pages per second. [1/s]
    flip_isolated : bool
        The flipped pages lie in hugepages nothing else keeps split.
    duration_seconds : float
        Run time the totals cover. [s]
    jobs : int
        Jobs: accelerator memory is allocated and freed per job (0: allocated once, kept). [1]
    """

    io_in_flight_bytes: int = 0
    swiotlb_dynamic: bool = False
    churn_per_second: float = 0.0
    churn_per_job: float = 0.0
    churn_bytes: int = PAGE_SIZE
    accelerators: tuple[Accelerator, ...] = field(default_factory=tuple)
    attestations_per_second: float = 0.0
    firmware_release: bool = True
    flip_rate: float = 0.0
    flip_isolated: bool = False
    duration_seconds: float = 0.0
    jobs: int = 0

    def __post_init__(self):
        for name in ("io_in_flight_bytes", "churn_per_second", "churn_per_job", "attestations_per_second",
                     "flip_rate", "duration_seconds", "jobs"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise InputError(Argument(name), value, "a number ≥ 0")
        if self.churn_bytes <= 0 or self.churn_bytes > MAX_BLOCK:
            raise InputError(Argument("churn_bytes"), self.churn_bytes, "a size from 1 B to 4 MiB")

    def to_columns(self) -> dict[str, float]:
        """The model's workload inputs (:data:`WORKLOAD_INPUTS`)."""
        kept = [a for a in self.accelerators if not a.tdisp]  # TDISP devices convert nothing
        return {
            "io_in_flight_bytes": float(self.io_in_flight_bytes), "swiotlb_dynamic": float(self.swiotlb_dynamic),
            "churn_per_second": float(self.churn_per_second), "churn_per_job": float(self.churn_per_job),
            "churn_bytes": float(self.churn_bytes),
            "accelerator_unprotected_bytes": float(sum(a.count * a.unprotected_bytes for a in kept)),
            "accelerator_chunks": float(sum(a.count * (a.unprotected_bytes // a.chunk_bytes) for a in kept)),
            "accelerator_chunk_ops_snp": float(sum(a.count * (a.unprotected_bytes // a.chunk_bytes)
                                                   * chunk_ops(a.chunk_bytes, True) for a in kept)),
            "accelerator_chunk_ops_tdx": float(sum(a.count * (a.unprotected_bytes // a.chunk_bytes)
                                                   * chunk_ops(a.chunk_bytes, False) for a in kept)),
            "accelerator_staging_buffers": float(sum(a.count * a.staging for a in kept)),
            "attestation_rate": float(self.attestations_per_second),
            "firmware_release": float(self.firmware_release), "flip_rate": float(self.flip_rate),
            "flip_isolated": float(self.flip_isolated), "duration_seconds": float(self.duration_seconds),
            "jobs": float(self.jobs),
        }

    def spec(self) -> str:
        """A one-line description of what differs from the boot-only default."""
        default = Workload()
        parts = [f"{k}={getattr(self, k) if k != 'accelerators' else ';'.join(a.spec() for a in self.accelerators)}"
                 for k in self.__dataclass_fields__ if getattr(self, k) != getattr(default, k)]
        return " ".join(parts) or "boot only"

    @classmethod
    def parse(cls, *, io_in_flight=(), swiotlb_dynamic=False, churn=None, accelerators=(), attestations=None,
              firmware_release=True, flip_rate=None, duration=None, jobs=None) -> "Workload":
        """A workload from the forms users type; errors name the argument (the CLI shows the flag)."""
        churn_s = churn_j = 0.0
        churn_bytes = PAGE_SIZE
        if churn:
            head, _, options = str(churn).partition(":")
            per = "s"
            if "/" in head:
                head, per = head.split("/", 1)
            if per.strip() not in ("s", "job"):
                raise InputError(Argument("churn"), churn, "RATE[/s|/job][:size=SIZE]")
            amount = rate(head, Argument("churn"))
            for item in [o for o in options.split(",") if o.strip()]:
                key, sep, raw = item.partition("=")
                if key.strip() != "size" or not sep:
                    raise InputError(Argument("churn"), item, "size=SIZE")
                churn_bytes = parse.size(raw, Argument("churn", "size"))
            churn_s, churn_j = (amount, 0.0) if per.strip() == "s" else (0.0, amount)
        flips, isolated = 0.0, False
        if flip_rate:
            head, _, option = str(flip_rate).partition(":")
            if option.strip() not in ("", "isolated"):
                raise InputError(Argument("flip_rate"), flip_rate, "RATE[:isolated]")
            flips, isolated = rate(head, Argument("flip_rate")), option.strip() == "isolated"
        return cls(
            io_in_flight_bytes=sum(in_flight(v, Argument("io_in_flight")) for v in (io_in_flight or ())),
            swiotlb_dynamic=bool(swiotlb_dynamic), churn_per_second=churn_s, churn_per_job=churn_j,
            churn_bytes=churn_bytes,
            accelerators=tuple(a if isinstance(a, Accelerator) else accelerator(a, Argument("accelerator"))
                               for a in (accelerators or ())),
            attestations_per_second=rate(attestations, Argument("attestations")) if attestations else 0.0,
            firmware_release=bool(firmware_release), flip_rate=flips, flip_isolated=isolated,
            duration_seconds=duration_of(duration), jobs=parse.count(jobs, Argument("job_count"), 0) if jobs else 0)


def duration_of(value) -> float:
    return duration(value, Argument("duration")) if value not in (None, "") else 0.0
