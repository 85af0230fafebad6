"""The simulated IMU data is fit for week 4: a small classifier trained on a gesture data set
captured with edgekit (4 gestures x 15 recordings) recognises held-out recordings well above chance."""
import numpy as np

from edgekit.capture import capture, load_dataset

GESTURES = ["circle", "idle", "punch", "wave"]


def features(x: np.ndarray) -> np.ndarray:
    """Per channel of the accelerometer and gyroscope: mean, standard deviation, peak-to-peak and
    mean absolute change (how fast it moves)."""
    x = x[:, :, :6]
    return np.concatenate([x.mean(1), x.std(1), np.ptp(x, axis=1), np.abs(np.diff(x, axis=1)).mean(1)], axis=1)


def train_softmax(f: np.ndarray, y: np.ndarray, classes: int, steps: int = 500, lr: float = 0.5):
    """Softmax regression by plain gradient descent on the cross-entropy."""
    w = np.zeros((f.shape[1], classes))
    b = np.zeros(classes)
    onehot = np.eye(classes)[y]
    for _ in range(steps):
        z = f @ w + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        grad = (p - onehot) / len(y)
        w -= lr * f.T @ grad
        b -= lr * grad.sum(0)
    return w, b


def test_gesture_classifier_on_simulated_captures(tmp_path):
    for g in GESTURES:
        entries = capture("nano33ble", "imu", tmp_path, label=g, rate=100, seconds=2, count=15, seed=11)
        assert all(e["complete"] and e["lost_samples"] == 0 for e in entries)
    data = load_dataset(tmp_path)
    assert data.labels == GESTURES and data.x.shape == (60, 200, 9)
    n = np.array([int(f.rsplit(".", 2)[1]) for f in data.files])
    train, test = n <= 10, n > 10                  # recordings 11-15 of each gesture are held out
    f = features(data.x)
    mu, sd = f[train].mean(0), f[train].std(0) + 1e-9
    f = (f - mu) / sd
    w, b = train_softmax(f[train], data.y[train], len(GESTURES))
    accuracy = float(np.mean(np.argmax(f[test] @ w + b, 1) == data.y[test]))
    assert accuracy >= 0.85, accuracy             # chance is 0.25
