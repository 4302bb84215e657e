"""Placeholder."""
def plot_model(*a, **k):
    raise NotImplementedError
