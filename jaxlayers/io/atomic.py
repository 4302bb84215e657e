"""`write_atomically`: put bytes at a path so that readers see the old file or the new one,
never a partial one, with the permissions a plain ``open(path, "wb")`` would give.

The bytes go to a temporary file beside the target (same directory, so the final
`os.replace` is an atomic rename on one filesystem), named ``.<name>.<pid>.<random>.tmp``
so that it is recognisable: it is removed when the write fails in any way (also on
Ctrl-C), and one left by a process that was killed mid-save is removed by the next save
of the same path. Permissions follow ``open()``: a new file gets ``0o666`` minus the
umask (the temporary file is created with ``os.open(..., 0o666)``, so the kernel applies
the umask and any default ACL); an existing file keeps its mode (and its group where the
saver may set it), as ``open(path, "wb")`` truncating it in place would.
"""
from __future__ import annotations

import os
import re
import secrets
import stat


def resolve_target(path, caller: str) -> str:
    """The file `path` names, `~` expanded and symbolic links followed (as ``open()``
    writes through a link); raises ValueError for an empty path, IsADirectoryError for
    a directory and FileNotFoundError for a missing parent directory."""
    raw = os.fspath(path)
    if isinstance(raw, bytes):
        raw = os.fsdecode(raw)
    if not raw:
        raise ValueError(f"{caller}: the path is empty; give a file name such as "
                         f"'model.safetensors'")
    target = os.path.realpath(os.path.expanduser(raw))
    if os.path.isdir(target):
        raise IsADirectoryError(f"{caller}: {raw!r} is a directory; give a file path in it, "
                                f"such as {os.path.join(raw, 'model.safetensors')!r}")
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{caller}: the directory {directory!r} of {raw!r} does not "
                                f"exist; create it first (os.makedirs)")
    return target


def _temp_pattern(target: str):
    name = re.escape(os.path.basename(target))
    return re.compile(rf"^\.{name}\.(\d+)\.[0-9a-f]{{16}}\.tmp$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True                     # another thread of this process may be saving
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True                     # another user's process
    except (ProcessLookupError, OverflowError):
        return False                    # gone, or not a possible process id
    return True


def remove_stale_temps(target: str) -> list:
    """Remove the temporary files of earlier saves of `target` whose process is gone;
    returns their paths."""
    directory, pattern, removed = os.path.dirname(target), _temp_pattern(target), []
    for entry in os.listdir(directory):
        match = pattern.match(entry)
        if match and not _alive(int(match.group(1))):
            stale = os.path.join(directory, entry)
            try:
                os.remove(stale)
                removed.append(stale)
            except FileNotFoundError:
                pass
    return removed


def _copy_permissions(fd: int, target: str):
    """Give the open temporary file the mode (and, where allowed, group) of an existing
    `target`; nothing when there is none."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    if os.fstat(fd).st_gid != st.st_gid:
        try:
            os.fchown(fd, -1, st.st_gid)
        except PermissionError:
            pass                        # not a member of that group: keep ours


def write_atomically(target: str, data: bytes) -> None:
    """Write `data` to `target` (a path from `resolve_target`) atomically: flushed and
    fsynced to a temporary file beside it, then renamed over it."""
    remove_stale_temps(target)
    directory, name = os.path.split(target)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                 0o666)
    try:
        try:
            _copy_permissions(fd, target)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass
        raise
    _sync_directory(directory)


def _sync_directory(directory: str):
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
