"""The exceptions of ebpf_sdk.

Every error the library raises is an :class:`Error`; the kind says whose
fault it is and what Python exception it also is:

- :class:`InputError` (also a ``ValueError``): the key, value, entries,
  file or argument given is wrong. Nothing was written. ``.path`` is the
  field inside the key or value (``value.rules[3].dstPortEnd``) when the
  error is about one field, ``.location`` the entry (``entries[7]``).
- :class:`KernelError` (also an ``OSError``): the kernel refused, or a map
  could not be opened. ``.errno`` is the kernel's errno when there is one.
  A batch write that stopped part way says how many entries were written
  (``.written``).
- :class:`MismatchError`: the pinned map is not the map the schema
  describes (type, sizes or BTF layout). Nothing was written.

A key that is not in the map raises the built-in ``KeyError`` from
``table[key]`` and ``del table[key]``; ``lookup`` returns None and
``delete`` returns False instead.
"""

from typing import Any, Dict, Optional

__all__ = ["Error", "InputError", "KernelError", "MismatchError"]


class Error(Exception):
    """Base class of every ebpf_sdk error.

    ``.report`` is the apply report (a dict, see ``Map.apply``) when the
    error stopped an apply, else None.
    """

    report: Optional[Dict[str, Any]] = None


class InputError(Error, ValueError):
    """The input is wrong: nothing was written.

    Attributes:
        path: the field inside the key or value, e.g.
            ``"value.rules[3].dstPortEnd"``, or None when the error is not
            about one field.
        location: which entry of an input, e.g. ``"entries[7]"``, or None.
    """

    path: Optional[str] = None
    location: Optional[str] = None


class KernelError(Error, OSError):
    """The kernel refused, or the map could not be opened.

    Attributes:
        errno: the kernel's errno (``errno.EEXIST``, ``errno.E2BIG``, ...)
            or None.
        written: for a batch write that stopped part way, how many entries
            are in the map (the first ones of the input); else None.
    """

    written: Optional[int] = None


class MismatchError(Error):
    """The pinned map does not match the schema; nothing was written.

    Attributes:
        map: the map's name in the schema.
        pin: the pin path that was opened.
    """

    map: Optional[str] = None
    pin: Optional[str] = None
