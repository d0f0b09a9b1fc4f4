"""Units: binary byte multiples and the page sizes the model works in. [B]"""

KiB = 1024
MiB = 1024**2
GiB = 1024**3
TiB = 1024**4
#: The base page size of x86-64. [B]
PAGE_SIZE = 4 * KiB
#: Hugepage sizes guest_memfd can be backed with; 4 KiB means "no hugepages". [B]
HUGEPAGE_SIZES = (4 * KiB, 2 * MiB, 1 * GiB)
