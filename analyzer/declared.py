"""What the installed plugins declare to the command line, kept between runs.

``model-analyze --help`` shows the plugins' commands, their analyzers' flag options
(``--top``, ``--device``), the output formats and the analyzers' names; ``model-analyze
plugins`` lists what each plugin provides. Reading that means importing every plugin's
declaration modules and registering them with pluggy: two thirds of what start-up spent
above ``import click, pluggy`` (issue 15, goal 4). It changes only when what it was read
from changes, so the last clean reading is kept in the user cache dir
(:func:`.cachedir.default_cache_dir`, ``declarations/``) and used again while

* its key is the same: the Python, its executable, ``sys.path`` (absolute), the tool's
  version and every ``MODEL_ANALYZE_*`` environment variable;
* every ``sys.path`` directory has the mtime it had: installing, upgrading or removing a
  distribution adds or removes its ``.dist-info`` there (stevedore keys its entry-point
  cache the same way);
* every ``entry_points.txt`` that declares the ``model_analyze`` group, and every module
  file that was loaded when the reading was made (the plugins' and all they import, the
  core's, click's, pluggy's; not the standard library's, which the Python version
  covers), has the size and mtime it had.

Anything else is a miss: the plugins are loaded as before and the new reading is stored.
A reading is stored only when it is clean — every plugin loaded and every hook answered —
so a broken plugin is always reported by the live path; and not while a file it was read
from is younger than :data:`RACY_NS` (a second edit within the filesystem's timestamp
granularity could keep size and mtime: git's "racily clean"). A plugin whose declarations
depend on anything else (a data file, the network) is read afresh with
``MODEL_ANALYZE_NO_CACHE=1``.

Only ``--help`` (or no arguments) and ``plugins`` use it (:func:`serves`); every other
command loads the plugins it runs. The stored values are plain (tuples, lists, dicts,
strings, numbers) and written with :mod:`marshal`, which reads back in a tenth of a
millisecond; a file that does not read back as the expected shape is a miss.
"""

from __future__ import annotations

import marshal
import os
import sys
import time
from typing import TYPE_CHECKING, NamedTuple

from .cachedir import default_cache_dir
from .clikit import TRUE_WORDS, Flag

if TYPE_CHECKING:
    import click

    from .descriptors import Analyzer, Format
    from .devices import Device
    from .manager import PluginManager
    from .ops.registry import OpRule

FORMAT = 1
"""Bumped whenever what is stored changes shape; part of the key."""
RACY_NS = 2_000_000_000
"""A file changed this recently (ns) is not trusted yet: the reading is not stored."""


class CommandDecl(NamedTuple):
    """What a group's help shows of one command."""

    name: str
    help: str | None
    short_help: str | None
    hidden: bool
    deprecated: bool | str


class Declarations(NamedTuple):
    """One reading of the installed plugins' declarations."""

    commands: tuple[CommandDecl, ...]
    flags: tuple[Flag, ...]
    formats: tuple[str, ...]
    analyzers: tuple[str, ...]
    listing: dict[str, object]
    """``model-analyze plugins``' document (:func:`listing`)."""


_active: Declarations | None = None


def active() -> Declarations | None:
    """The cached reading this process runs on, or None when it reads the plugins themselves."""
    return _active


def serves(argv: list[str]) -> bool:
    """Whether the command line ``argv`` needs nothing of the plugins but their declarations."""
    return not argv or argv in (["--help"], ["-h"]) or argv[0] == "plugins"


def enabled() -> bool:
    return os.environ.get("MODEL_ANALYZE_NO_CACHE", "").strip().lower() not in TRUE_WORDS


def load() -> Declarations | None:
    """The stored reading if nothing it was read from has changed (and make it the active one)."""
    global _active
    if not enabled():
        return None
    key = _key()
    try:
        with open(_path(key), "rb") as f:
            stored = marshal.loads(f.read())
        fresh = _fresh(stored, key)
        decl = _declarations(stored[3]) if fresh else None
    except (OSError, EOFError, ValueError, TypeError, IndexError, KeyError):
        return None  # absent, unreadable or not what this version writes: read the plugins
    _active = decl
    return decl


def store(decl: Declarations) -> bool:
    """Keep ``decl`` for the next runs; False when it was not stored (a file too young to be
    trusted, a value marshal cannot write, an unwritable cache dir)."""
    if not enabled():
        return False
    from .manager import entry_point_files

    ep_files = entry_point_files()
    if ep_files is None:
        return False  # a zip or another finder on sys.path: the directories do not tell what is installed
    now = time.time_ns()
    key = _key()
    dirs = tuple((p, _mtime(p)) for p in _sys_path())
    files = tuple(f for f in (_stat(p) for p in sorted(_module_files() | set(ep_files))) if f is not None)
    if any(m > now - RACY_NS for _, m in dirs) or any(m > now - RACY_NS for _, m, _ in files):
        return False
    body = (tuple(tuple(c) for c in decl.commands), tuple(tuple(f) for f in decl.flags), decl.formats,
            decl.analyzers, decl.listing)
    path = _path(key)
    try:
        data = _dumps((key, dirs, files, body))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # readers see the old file or the whole new one
    except (OSError, ValueError):
        return False
    return True


def read(group: click.Group, command_failures: int) -> Declarations | None:
    """The reading of the loaded plugins (``group`` has their commands), or None when it is not
    clean: a plugin that failed to load, or a hook that raised or returned the wrong thing."""
    from .clikit import flag_specs
    from .manager import get_plugin_manager

    pm = get_plugin_manager()
    provided = _provided(pm)
    if command_failures or not provided.clean:
        return None
    commands = tuple(CommandDecl(name, cmd.help, cmd.short_help, bool(cmd.hidden), cmd.deprecated)
                     for name, cmd in sorted(group.commands.items()))
    return Declarations(commands, tuple(flag_specs()), tuple(f.name for _, f in provided.formats),
                        tuple(sorted(provided.analyzers)), _listing(pm, provided))


def listing() -> dict[str, object]:
    """``model-analyze plugins``' document: the active reading's, else read from the plugins."""
    if _active is not None:
        return _active.listing
    from .manager import get_plugin_manager

    pm = get_plugin_manager()
    return _listing(pm, _provided(pm))


class _Provided(NamedTuple):
    """What the loaded plugins provide, each hook called once, and whether every call was clean."""

    analyzers: dict[str, Analyzer]
    rules: list[tuple[str, OpRule]]
    formats: list[tuple[str, Format]]
    devices: list[tuple[str, Device]]
    clean: bool


def _provided(pm: PluginManager) -> _Provided:
    from .analyzers import available_analyzers
    from .devices import Device

    analyzers, problems = available_analyzers(pm)
    rules, rule_errors = pm.op_rules()
    formats, format_errors = pm.formats()
    devices, device_errors = pm.collect("model_analyze_devices", Device)
    clean = not (pm.failures or problems or rule_errors or format_errors or device_errors)
    return _Provided(analyzers, rules, formats, devices, clean)


def _listing(pm: PluginManager, provided: _Provided) -> dict[str, object]:
    """``model-analyze plugins``' document: one row per plugin (distribution, version, plugin
    API, hooks, what it provides, its analyzers' options) and the plugins that failed to load.
    Plain JSON-able values (what :func:`store` can write)."""
    from ._version import __version__
    from .hookspecs import API_VERSION
    from .options import catalog

    analyzers, rules, fmts, devices = provided.analyzers, provided.rules, provided.formats, provided.devices
    options = catalog(analyzers.values())
    rows = []
    for name, info in pm.infos.items():
        mine = [a for a in analyzers.values() if a.plugin == name]
        opts = [{"analyzer": a.name, "key": s.key, "type": s.type_text, "default": s.default, "help": s.help,
                 "flag": f"--{s.key}" if s.flag else None}
                for a in mine if a.name in options.analyzers for s in options.analyzers[a.name][1]]
        rows.append({
            "name": name, "distribution": info.distribution, "version": info.version, "api": info.api or None,
            "hooks": info.hooks, "analyzers": [a.name for a in mine],
            "op_rules": [f"{r.domain + '::' if r.domain else ''}{r.op_type}" for p, r in rules if p == name],
            "formats": [f.name for p, f in fmts if p == name],
            "devices": [d.name for p, d in devices if p == name],
            "options": opts,
        })
    failed = [{"name": f.name, "distribution": f.distribution, "version": f.version, "error": f.error}
              for f in pm.failures]
    return {"model_analyze": __version__, "api_version": API_VERSION, "plugins": rows, "failed": failed}


def _key() -> tuple[object, ...]:
    from ._version import __version__

    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("MODEL_ANALYZE_")))
    return FORMAT, __version__, sys.version, sys.executable, _sys_path(), env


def _sys_path() -> tuple[str, ...]:
    return tuple(os.path.abspath(p) for p in sys.path)


def _path(key: tuple[object, ...]) -> str:
    """One file per key, so that several environments (or working directories, for
    ``python -m``) sharing a cache dir do not evict each other."""
    import binascii

    return os.path.join(default_cache_dir(), "declarations", f"{binascii.crc32(_dumps(key)):08x}.bin")


def _dumps(value: object) -> bytes:
    """:func:`marshal.dumps`, whose stub types its argument narrowly: what it cannot write
    raises ValueError at run time, and :func:`store` then stores nothing."""
    return marshal.dumps(value)  # type: ignore[arg-type]


def _fresh(stored: tuple[object, ...], key: tuple[object, ...]) -> bool:
    stored_key, dirs, files = stored[0], stored[1], stored[2]
    if stored_key != key or not isinstance(dirs, tuple) or not isinstance(files, tuple):
        return False
    return all(_mtime(p) == m for p, m in dirs) and all(_stat(p) == (p, m, s) for p, m, s in files)


def _declarations(body: tuple[object, ...]) -> Declarations:
    commands, flags, formats, analyzers, listing = body
    if not (isinstance(commands, tuple) and isinstance(flags, tuple) and isinstance(formats, tuple)
            and isinstance(analyzers, tuple) and isinstance(listing, dict)):
        raise ValueError("not a reading of this format")
    return Declarations(tuple(CommandDecl(*c) for c in commands), tuple(Flag(*f) for f in flags), formats,
                        analyzers, listing)


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _stat(path: str) -> tuple[str, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return path, st.st_mtime_ns, st.st_size


def _module_files() -> set[str]:
    """The file of every loaded module but the standard library's."""
    stdlib = os.path.dirname(os.__file__) + os.sep
    out: set[str] = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and (not path.startswith(stdlib) or "-packages" in path):
            out.add(os.path.abspath(path))
    return out
