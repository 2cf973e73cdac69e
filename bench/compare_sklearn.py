"""compare_sklearn.py TRAIN.svm TEST.svm EPOCHS OUT.json [C...]: scikit-learn's
SGDClassifier (log loss) on a LIBSVM dump, one partial_fit per epoch, test
logloss after each epoch; one run with every default, then one per LIBLINEAR
C with alpha = 1 / (C n) (n training rows: the same L2-regularized objective
as LIBLINEAR's at that C). Training seconds add up the partial_fit calls only (evaluation
apart); loading both files is timed once, separately."""
import json
import sys
import time

out = {"ok": False, "runs": []}
try:
    import numpy as np
    import sklearn
    from sklearn.datasets import load_svmlight_files
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import log_loss

    out["version"] = sklearn.__version__
    t0 = time.time()
    Xtr, ytr, Xte, yte = load_svmlight_files(sys.argv[1:3])
    out["load_seconds"] = time.time() - t0
    out["rows"] = int(Xtr.shape[0])
    classes = np.unique(ytr)
    for alpha in [None] + [1 / (float(c) * out["rows"]) for c in sys.argv[5:]]:
        kw = {} if alpha is None else {"alpha": alpha}
        clf = SGDClassifier(loss="log_loss", random_state=1, **kw)
        spent = 0.0
        points = []
        for epoch in range(1, int(sys.argv[3]) + 1):
            t = time.time()
            clf.partial_fit(Xtr, ytr, classes=classes)
            spent += time.time() - t
            p = np.clip(clf.predict_proba(Xte)[:, 1], 1e-15, 1 - 1e-15)
            points.append({"epoch": epoch, "seconds": spent,
                           "test_logloss": float(log_loss(yte, p, labels=classes))})
            print(f"sklearn alpha {alpha or 'default'} epoch {epoch}: {spent:.2f} s, "
                  f"test logloss {points[-1]['test_logloss']:.5f}", file=sys.stderr)
        out["runs"].append({"alpha": alpha if alpha is not None else clf.alpha, "default": alpha is None,
                            "points": points,
                            "samples_per_second": len(points) * out["rows"] / spent if spent > 0 else 0})
    out["ok"] = True
except Exception as e:  # reported in the comparison, never a crash without a reason
    out["error"] = f"{type(e).__name__}: {e}"
with open(sys.argv[4], "w") as f:
    json.dump(out, f)
sys.exit(0 if out["ok"] else 1)
