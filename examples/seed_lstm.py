"""The seed's stacked LSTM on a real monthly series: will the S&P 500 make a large move?

Data: the monthly closing prices of ten US stocks and indices from 1990 on (IBM, AAPL, MSFT,
XRX, AMZN, DELL, GOOGL, ADBE, ^GSPC, ^IXIC), the `Stocks.csv` sample file that ships with
matplotlib (source: Yahoo Finance). Each example is a window of 12 months of the sizes of the
ten monthly moves, log |log return| (10 features per step: the seed's InputLayer((None, 10)));
the label is 1 when the S&P 500's move in the month after the window is larger than the median
move of the training months. Large moves cluster in time (the effect GARCH models), so this is
learnable, unlike the direction of the move. The split is by time: the last fifth of the
months is the test set; the last 60 training windows pick the training step (early stopping).

Model: InputLayer((None, 10)) -> LSTM(64, return_sequences=True) -> LSTM(32) ->
Dense(1, sigmoid), trained with optax' Adam on the binary cross-entropy. Prints the test
accuracy next to the majority-class baseline and writes examples/out/seed_lstm.png.
"""
import csv
import os
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
from matplotlib import cbook

import jaxlayers as jl

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

WINDOW, STEPS, SEED = 12, 300, 0
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def load_prices():
    """Dates, ticker names and a (months, 10) price array (NaN before a listing)."""
    with cbook.get_sample_data("Stocks.csv") as f:
        rows = [r for r in csv.reader(line for line in f if not line.startswith("#"))]
    names, rows = rows[0][1:], rows[1:]
    # Keep the month starts: the file also has empty rows and a repeated last month.
    rows = [r for r in rows if r[0].endswith("-01") and r[names.index("^GSPC") + 1]]
    dates = np.array([r[0] for r in rows], "datetime64[D]")
    prices = np.array([[float(v) if v else np.nan for v in r[1:]] for r in rows])
    return dates, names, prices


def make_windows(prices, target, n_train):
    """(windows, 12, 10) sizes of the monthly moves |log return| and the labels: 1 when the
    S&P 500's next move is larger than the median move of the training months."""
    moves = np.abs(np.diff(np.log(prices), axis=0))
    logs = np.log(np.nan_to_num(moves, nan=np.nanmedian(moves)) + 1e-3)  # heavy tails tamed
    x = np.stack([logs[i:i + WINDOW] for i in range(len(moves) - WINDOW)])
    nxt = moves[WINDOW:, target]
    threshold = np.median(nxt[:n_train])
    return x.astype(np.float32), (nxt > threshold).astype(np.float32), nxt, threshold


def main():
    t0 = time.time()
    dates, names, prices = load_prices()
    target = names.index("^GSPC")
    split = int(0.8 * (len(prices) - 1 - WINDOW))
    x, y, nxt, threshold = make_windows(prices, target, split)
    mean = x[:split].mean(axis=(0, 1))
    std = x[:split].std(axis=(0, 1)) + 1e-8
    x = (x - mean) / std
    x_train, y_train, x_test, y_test = x[:split], y[:split], x[split:], y[split:]
    print(f"{len(x)} windows of {WINDOW} months x {x.shape[-1]} series; train {len(x_train)}, "
          f"test {len(x_test)} (from {dates[WINDOW + 1 + split]})")

    model = jl.serial(jl.InputLayer((None, 10)), jl.LSTM(64, return_sequences=True),
                      jl.LSTM(32), jl.Dense(1, activation="sigmoid"), name="seed_lstm")
    jl.summary(model)                                     # 19,200 + 12,416 + 33 params
    _, params = model.init(jax.random.key(SEED), None)

    tx = optax.adam(3e-4)
    opt_state = tx.init(params)

    def loss_fn(params, x, y):
        p = model.apply(params, x)[:, 0]
        return optax.sigmoid_binary_cross_entropy(jnp.log(p) - jnp.log1p(-p), y).mean()

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    predict = jax.jit(lambda params, x: model.apply(params, x)[:, 0])
    # The last 60 training windows are a validation set: keep the params that do best there
    # (with ~240 examples and 31k params the model overfits quickly).
    x_fit, y_fit, x_val, y_val = x_train[:-60], y_train[:-60], x_train[-60:], y_train[-60:]
    val_loss = jax.jit(loss_fn)
    best = (float(val_loss(params, x_val, y_val)), 0, params)
    key = jax.random.key(SEED + 1)
    for i in range(1, STEPS + 1):
        key, sub = jax.random.split(key)
        idx = jax.random.choice(sub, len(x_fit), (64,), replace=False)
        params, opt_state, loss = step(params, opt_state, x_fit[idx], y_fit[idx])
        if i % 10 == 0:
            v = float(val_loss(params, x_val, y_val))
            if v < best[0]:
                best = (v, i, params)
            if i % 100 == 0:
                print(f"step {i:4d}  train loss {float(loss):.4f}  val loss {v:.4f}")
    print(f"keeping the params of step {best[1]} (val loss {best[0]:.4f})")
    params = best[2]

    p_test = np.asarray(predict(params, x_test))
    pred = p_test > 0.5
    acc = (pred == (y_test > 0.5)).mean()
    baseline = max(y_test.mean(), 1 - y_test.mean())
    eps = 1e-7
    bce = -np.mean(y_test * np.log(p_test + eps) + (1 - y_test) * np.log(1 - p_test + eps))
    print(f"test accuracy {acc:.3f} (majority-class baseline {baseline:.3f}), test BCE "
          f"{bce:.4f}; large-move threshold {threshold * 100:.2f}% a month")

    os.makedirs(OUT, exist_ok=True)
    test_dates = dates[WINDOW + 1 + split:WINDOW + 1 + split + len(x_test)]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    a1.bar(test_dates, nxt[split:] * 100, width=20,
           color=np.where(y_test > 0.5, "tab:red", "tab:gray"))
    a1.axhline(threshold * 100, color="k", lw=0.8, ls="--", label="large-move threshold")
    a1.set_ylabel("S&P 500 next-month\n|log return| (%)")
    a1.legend(loc="upper left")
    a1.set_title("Seed LSTM: P(large S&P 500 move next month) against the truth (test months)")
    a2.plot(test_dates, p_test, "k.-", label="predicted P(large move)")
    a2.scatter(test_dates, y_test, c=np.where(y_test > 0.5, "tab:red", "tab:gray"), s=12,
               label="truth (1 = large)")
    a2.axhline(0.5, color="gray", lw=0.5)
    a2.set_ylabel("probability")
    a2.legend(loc="center left", bbox_to_anchor=(0.0, 0.75), fontsize=8)
    fig.tight_layout()
    path = os.path.join(OUT, "seed_lstm.png")
    fig.savefig(path, dpi=100)
    print(f"wrote {path}  ({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
