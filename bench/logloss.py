"""logloss.py TEST.svm PREDICTIONS: the logloss of `liblinear-predict -b 1` output against
the labels of the LIBSVM file it scored (label > 0 is positive; probabilities clamped to
[1e-15, 1 - 1e-15], as virga's metrics)."""
import math
import sys

labels = [float(line.split(None, 1)[0]) > 0 for line in open(sys.argv[1])]
with open(sys.argv[2]) as out:
    pos = out.readline().split()[1:].index("1")  # "labels 1 0": the column of label 1
    p = [float(line.split()[1 + pos]) for line in out]
assert len(p) == len(labels), (len(p), len(labels))
eps = 1e-15
print(sum(-math.log(min(max(q if y else 1 - q, eps), 1 - eps)) for y, q in zip(labels, p)) / len(p))
