"""Why a fit kept a coefficient at its starting value instead of fitting it."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class HoldReason(enum.Enum):
    """The kinds of reason a coefficient is held."""

    #: the caller asked (``hold=``)
    REQUESTED = "held on request"
    #: fitted to an earlier target, kept (``hold_fitted=True``)
    FITTED_EARLIER = "fitted to an earlier target"
    #: enters the target only inside ⌈·⌉: its derivative is zero almost everywhere
    STEP_ONLY = ("enters only through a step function (⌈·⌉), which least squares cannot move; "
                 "a fit cannot determine it")
    #: the runs do not vary what it acts on
    NO_EFFECT = "changes no prediction on these runs"
    #: its effect on these runs is a combination of other free coefficients' effects
    COLLINEAR = "collinear"


#: Runs that tell collinear coefficients apart, by pair: what the identifiability message
#: tells the user to measure (docs/fitting.md, "which runs determine what").
SEPARATED_BY: dict[frozenset, str] = {
    frozenset({"remainder_regions", "transient_regions"}):
        "runs with 1 GiB hugepages (the two spans split different numbers of 1 GiB pages), "
        "or measured merges: fit merges first, then splits with --hold-fitted",
    frozenset({"split_fixed_cycles", "split_subpage_cycles"}):
        "runs with both 2 MiB and 1 GiB hugepages (the per-subpage cost scales with the page size)",
    frozenset({"conversion_ops_fixed", "remainder_regions"}):
        "runs of different memory sizes or vCPU counts with measured conversion_ops",
}


def separating_runs(name: str, partners: tuple[str, ...]) -> str:
    """What runs would separate ``name`` from its collinear ``partners`` ("" when unknown)."""
    hints = [SEPARATED_BY[frozenset({name, p})] for p in partners if frozenset({name, p}) in SEPARATED_BY]
    return "; ".join(dict.fromkeys(hints))


@dataclass(frozen=True)
class Hold:
    """One held coefficient: the reason, and what the reason needs to be read
    (``partners`` of a collinear coefficient; ``when`` the check found it)."""

    reason: HoldReason
    partners: tuple[str, ...] = ()
    when: str = ""
    #: the held coefficient (for the hint naming runs that would separate it)
    name: str = ""

    @property
    def determined_by_data(self) -> bool:
        """True when the data (not the caller) made the fit hold it."""
        return self.reason not in (HoldReason.REQUESTED, HoldReason.FITTED_EARLIER)

    def text(self) -> str:
        """The reason in words, as the fit's report shows it."""
        if self.reason is HoldReason.COLLINEAR:
            what = "collinear with " + ", ".join(self.partners) + " on these runs"
            hint = separating_runs(self.name, self.partners) if self.name else ""
            if hint:
                what += f" (to separate them: {hint})"
        else:
            what = self.reason.value
        if self.when:
            return f"{what} ({self.when}); held at the starting calibration's value"
        return what
