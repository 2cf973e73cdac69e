"""Test loss against time for jobs and searches (matplotlib, imported only when plotting)."""
import time


def in_notebook():
    try:
        from IPython import get_ipython
        shell = get_ipython()
        return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"
    except Exception:
        return False


def _draw(ax, runs):
    ax.clear()
    metrics = set()
    for label, job in runs:
        if job is None:
            continue
        h = job.history
        if h:
            # The model's primary metric (logloss; rmse for mf); test_logloss in older histories.
            ax.plot([p["seconds"] for p in h],
                    [p.get("test_metric", p.get("test_logloss")) for p in h], label=str(label))
            metrics.add(job.progress.get("metric", "logloss"))
    ax.set_xlabel("seconds")
    ax.set_ylabel("test " + (metrics.pop() if len(metrics) == 1 else "metric"))
    if runs:
        ax.legend(fontsize="small")


def plot_runs(runs, ax=None, live=None, interval=1.0):
    """runs: (label, Job or None) pairs, or a callable returning them (re-read at each redraw)."""
    import matplotlib
    get = runs if callable(runs) else (lambda: runs)
    notebook = in_notebook()
    if live is None:
        live = notebook
    if not notebook and ax is None:
        matplotlib.use(matplotlib.get_backend())  # keep what the user chose (Agg when headless)
    import matplotlib.pyplot as plt
    fig = ax.figure if ax is not None else plt.figure(figsize=(7, 4))
    ax = ax or fig.add_subplot(111)
    if not live:
        _draw(ax, get())
        return fig
    from IPython.display import clear_output, display
    while True:
        current = get()
        _draw(ax, current)
        clear_output(wait=True)
        display(fig)
        if all(job is None or job.done() for _, job in current):
            break
        time.sleep(interval)
    plt.close(fig)
    return fig
