"""`load_keras_file`: a ``.keras`` file opened as a Keras model without running code from it.

A ``.keras`` file is a zip archive whose ``config.json`` describes the model. Two things in
it can make Keras run Python code stored in or named by the file: a ``Lambda`` layer
(whose function may be stored as bytecode, ``"__lambda__"``) and a custom object (a class
or function that Keras looks up by name and then calls). Keras refuses stored bytecode
only in safe mode, and `keras.config.enable_unsafe_deserialization()`, called anywhere in
the process, switches safe mode off for every later load, whatever ``safe_mode=True``
says. So before Keras sees the file its configuration is read as plain JSON and refused
when it holds a Lambda layer, stored bytecode or a custom object that is not registered
in this process; the load itself then runs inside Keras' safe-mode scope, which takes
precedence over the global flag.
"""
from __future__ import annotations

import json
import zipfile

_CONFIG_LIMIT = 64 * 2**20          # bytes of config.json read at most


def _refusal(path, what, where) -> str:
    return (f"from_keras: {path!r} holds {what} (in {where}); jaxlayers does not run Python "
            f"code from a file, whatever Keras' safe-mode setting: rebuild that layer in "
            f"jaxlayers from your own code (e.g. jl.Lambda) and import the model without it")


def _keras_module(module) -> bool:
    return isinstance(module, str) and (module == "keras" or module.startswith("keras."))


def _scan(node, where, path, keras, error):
    """Raise `error` for the first Lambda layer, stored bytecode or unregistered custom
    object in the config `node`; `where` names the enclosing layer."""
    if isinstance(node, list):
        for item in node:
            _scan(item, where, path, keras, error)
        return
    if not isinstance(node, dict):
        return
    cls, module = node.get("class_name"), node.get("module")
    config = node.get("config")
    if isinstance(config, dict) and isinstance(config.get("name"), str) and cls:
        where = f"{cls} {config['name']!r}"
    if cls == "__lambda__":
        raise error(_refusal(path, "a Python lambda stored as bytecode", where))
    if cls == "Lambda" and _keras_module(module):
        raise error(_refusal(path, "a Lambda layer, which runs an arbitrary Python function",
                             where))
    registered = node.get("registered_name")
    if isinstance(cls, str) and isinstance(module, str) and not _keras_module(module) \
            and module != "builtins" and isinstance(registered, str) \
            and keras.saving.get_registered_object(registered) is None:
        raise error(f"from_keras: {path!r} holds the custom object {cls} (registered name "
                    f"{registered!r}, module {module!r}, in {where}), which is not registered "
                    f"in this process; jaxlayers does not import or run code named by a file. "
                    f"Rebuild it with jaxlayers, or import the code that registers it (with "
                    f"keras.saving.register_keras_serializable) and give it a converter in "
                    f"jaxlayers.io.keras_import.CONVERTERS")
    for value in node.values():
        _scan(value, where, path, keras, error)


def _config(path, error) -> dict:
    """The parsed ``config.json`` of the archive at `path`."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("config.json")
            if info.file_size > _CONFIG_LIMIT:
                raise error(f"from_keras: {path!r} has a config.json of {info.file_size} "
                            f"bytes, more than a model description needs")
            return json.loads(archive.read(info))
    except (zipfile.BadZipFile, KeyError, ValueError, RecursionError) as e:
        if isinstance(e, error):
            raise
        raise error(f"from_keras: {path!r} is not a valid .keras file (a zip archive with a "
                    f"config.json): {type(e).__name__}: {e}") from None


def load_keras_file(path, keras, error):
    """The Keras model in the ``.keras`` file `path`, loaded with compile=False under
    Keras' safe mode once its configuration has been checked to hold no code; raises
    `error` (naming the layer and why) otherwise."""
    from keras.src.saving.serialization_lib import SafeModeScope
    _scan(_config(path, error), "the model", path, keras, error)
    with SafeModeScope(True):
        return keras.saving.load_model(path, compile=False, safe_mode=True)
