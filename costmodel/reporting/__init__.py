"""Reports: notebooks executed with papermill and exported to self-contained HTML and PDF.

The flow, one module each:

- :mod:`~costmodel.reporting.notebooks` — find and read a notebook, check its parameters;
- :mod:`~costmodel.reporting.execute` — run it (papermill, or a warm kernel in batches);
- :mod:`~costmodel.reporting.mathsvg` — formulas to inline SVG for offline readers;
- :mod:`~costmodel.reporting.export` — self-contained HTML (style in ``report.css``) and PDF;
- :mod:`~costmodel.reporting.report` — one report, written atomically;
- :mod:`~costmodel.reporting.batch` and :mod:`~costmodel.reporting.index` — many reports on a
  Dask cluster and their index page; :mod:`~costmodel.reporting.workers` — what each worker runs;
- :mod:`~costmodel.reporting.summary` — the key numbers a report publishes
  (:func:`read_summary` reads them back from a written report);
- :mod:`~costmodel.reporting.widgets` — widget state turned into static outputs for exports;
- what a report shows: :mod:`~costmodel.reporting.sections` (tables and grids),
  :mod:`~costmodel.reporting.plots` (figures), :mod:`~costmodel.reporting.cards` (formula cards).
"""

from costmodel.reporting.batch import BatchInterrupted, Outcome, default_jobs, read_sweep, render_batch
from costmodel.reporting.execute import ReportError, WarmKernel, execute
from costmodel.reporting.export import (
                                           FORMATS,
                                           PDF_ENGINES,
                                           external_references,
                                           parse_formats,
                                           to_html,
                                           to_pdf,
)
from costmodel.reporting.index import write_index
from costmodel.reporting.mathsvg import math_svg, render_math
from costmodel.reporting.notebooks import (
                                           KERNEL,
                                           NOTEBOOKS_DIR,
                                           Parameter,
                                           available_notebooks,
                                           check_parameters,
                                           notebook_parameters,
                                           notebook_path,
                                           read_notebook,
                                           report_name,
)
from costmodel.reporting.report import Rendered, render
from costmodel.reporting.summary import SUMMARY_KEYS, SUMMARY_TAG, read_summary, summary_of

__all__ = ["BatchInterrupted", "FORMATS", "KERNEL", "NOTEBOOKS_DIR", "PDF_ENGINES", "SUMMARY_KEYS", "SUMMARY_TAG", "Outcome", "Parameter",
           "Rendered", "ReportError", "WarmKernel", "available_notebooks", "check_parameters", "default_jobs", "execute",
           "external_references", "math_svg", "notebook_parameters", "notebook_path", "parse_formats", "read_notebook",
           "read_summary", "read_sweep", "render", "render_batch", "render_math", "report_name", "summary_of", "to_html", "to_pdf",
           "write_index"]
