"""Named tuples declared as classes, without importing `typing`.

`typing` costs ~0.45 MiB of resident memory for the life of the process
(measured on the agent's start-up imports), and the agent needs nothing
from it at run time but `NamedTuple`.  `@record` turns a class whose
annotated names are its fields (a default after the name, as with
typing.NamedTuple) into a collections.namedtuple that also carries the
class's docstring, methods and properties.  Type checkers see the
annotations; the annotations themselves stay strings (every module here
uses `from __future__ import annotations`).
"""

from __future__ import annotations

from collections import namedtuple

# Set by the namespace, not by the class body: never copied to the tuple.
_NAMESPACE_ONLY = frozenset({"__annotations__", "__dict__", "__weakref__", "__module__",
                             "__qualname__", "__doc__"})


def record(cls: type) -> type:
    """The named tuple of `cls`'s annotated fields, in order, with their
    defaults (which, as in any named tuple, must all come last)."""
    namespace = cls.__dict__
    fields = tuple(namespace.get("__annotations__", {}))
    defaults = []
    for name in fields:
        if name in namespace:
            defaults.append(namespace[name])
        elif defaults:
            raise TypeError(f"{cls.__name__}: field {name!r} without a default follows one with a default")
    if cls.__bases__ != (object,):
        raise TypeError(f"{cls.__name__}: a record does not inherit ({cls.__bases__})")
    tuple_class = namedtuple(cls.__name__, fields, defaults=defaults, module=cls.__module__)
    for name, value in namespace.items():
        if name not in _NAMESPACE_ONLY and name not in fields:
            setattr(tuple_class, name, value)
    tuple_class.__qualname__ = cls.__qualname__
    if cls.__doc__ is not None:
        tuple_class.__doc__ = cls.__doc__
    tuple_class.__annotations__ = dict(namespace.get("__annotations__", {}))
    return tuple_class
