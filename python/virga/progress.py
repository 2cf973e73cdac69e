"""Progress of a job while fit() or Job.wait() blocks: epoch, loss, samples/s.

In Jupyter a small HTML table updated in place (IPython's display handles); on a terminal one
line rewritten in place; elsewhere (a log, a pipe) a line every few seconds, only when asked
for (verbose=2), so batch jobs and scikit-learn's own loops stay quiet by default.
"""
import html
import math
import sys
import time

from .plotting import in_notebook


def _num(x, fmt):
    return format(x, fmt) if isinstance(x, (int, float)) and math.isfinite(x) else "-"


def fields(job):
    """The progress of `job` as (name, text) pairs, in display order."""
    p = job.progress
    evaluated = isinstance(p.get("best_logloss"), float) and math.isfinite(p["best_logloss"])
    return [("job", job.id), ("state", job.status),
            ("epoch", f"{p.get('epoch', 0)}/{p.get('epochs', 0)}"),
            ("loss", _num(p.get("test_logloss"), ".4f") if evaluated else "-"),
            ("best", _num(p.get("best_logloss"), ".4f")),
            ("AUC", _num(p.get("test_auc"), ".4f") if evaluated else "-"),
            ("samples/s", _num(p.get("samples_per_second"), ",.0f")),
            ("workers", str(p.get("workers_alive", 0))),
            ("seconds", _num(p.get("seconds"), ".1f"))]


def html_table(rows, header=None):
    """An HTML table of rows of cells (text escaped)."""
    out = ['<table style="font-family:monospace;font-size:90%">']
    if header:
        out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>")
    out.append("</table>")
    return "".join(out)


def job_html(job):
    f = fields(job)
    return html_table([[v for _, v in f]], header=[k for k, _ in f])


class TextProgress:
    """One status line: rewritten in place on a terminal; else one line per `every` seconds."""

    def __init__(self, stream=None, every=5.0):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = every
        self.last = -math.inf

    def show(self, text, final=False):
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + text[:200] + "\033[K" + ("\n" if final else ""))
        elif final or now - self.last >= self.every:
            self.stream.write(text + "\n")
            self.last = now
        self.stream.flush()

    def update(self, job, final=False):
        self.show("  ".join(f"{k} {v}" for k, v in fields(job)[1:]), final=final)


class NotebookProgress:
    """An HTML table in the notebook's output, replaced at each update."""

    def __init__(self, display=None, html_type=None):
        if display is None:
            from IPython.display import HTML, display
            html_type = HTML
        self._html = html_type or (lambda s: s)
        self._handle = display(self._html(""), display_id=True)

    def update(self, job, final=False):
        self._handle.update(self._html(job_html(job)))


def make(verbose, stream=None):
    """The display for a verbosity (0 none; 1 notebook or terminal; 2 always), or None."""
    if not verbose:
        return None
    if in_notebook():
        return NotebookProgress()
    text = TextProgress(stream)
    if text.tty or verbose >= 2:
        return text
    return None
