"""The host-side collector, ``costmodel-collect``: a standalone Python 3 script (standard
library only), so it can be copied to a host that does not have costmodel installed.

Installed with the package it is also the ``costmodel-collect`` command (:func:`main`).
"""

import runpy
import sys
from pathlib import Path

#: The collector script itself.
SCRIPT = Path(__file__).resolve().parent / "costmodel-collect"
#: Example sweep shapes and QEMU command-line templates.
EXAMPLES = Path(__file__).resolve().parent / "examples"


def main() -> None:
    """Run the collector script as the ``costmodel-collect`` command."""
    sys.argv[0] = "costmodel-collect"
    runpy.run_path(str(SCRIPT), run_name="__main__")
