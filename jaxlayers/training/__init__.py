"""Training: losses, metrics, the fit / evaluate / predict loop, callbacks."""
