"""Layer families, one module each; the public names are re-exported by `jaxlayers`."""
