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


@dataclass(frozen=True)
class Hold:
    """One held coefficient: the reason, and what the reason needs to be read
    (``partners`` of a collinear coefficient; ``when`` the check found it)."""

    reason: HoldReason
    partners: tuple[str, ...] = ()
    when: str = ""

    @property
    def determined_by_data(self) -> bool:
        """True when the data (not the caller) made the fit hold it."""
        return self.reason not in (HoldReason.REQUESTED, HoldReason.FITTED_EARLIER)

    def text(self) -> str:
        """The reason in words, as the fit's report shows it."""
        if self.reason is HoldReason.COLLINEAR:
            what = "collinear with " + ", ".join(self.partners) + " on these runs"
        else:
            what = self.reason.value
        if self.when:
            return f"{what} ({self.when}); held at the starting calibration's value"
        return what
