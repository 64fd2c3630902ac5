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
# What the named tuple itself defines, which a class body may not replace
# (typing.NamedTuple refuses the same names).
_PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields",
                         "_field_defaults", "_make", "_replace", "_asdict", "_source"})


def record(cls: type) -> type:
    """The named tuple of `cls`'s annotated fields, in order, with their
    defaults (which, as in any named tuple, must all come last)."""
    namespace = cls.__dict__
    # Present in the class's own dict under `from __future__ import
    # annotations` (and before Python 3.14 in any case); without it a
    # record would silently have no fields.
    fields = tuple(namespace.get("__annotations__", {}))
    if not fields:
        raise TypeError(f"{cls.__name__}: a record needs annotated fields "
                        "(and its module `from __future__ import annotations`)")
    for name in _PROHIBITED.intersection(namespace):
        raise TypeError(f"{cls.__name__}: a record may not define {name}")
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
            code = getattr(getattr(value, "fget", value), "__code__", None)
            if code is not None and "__class__" in code.co_freevars:
                # super() and __class__ would name the class body, which is
                # not the tuple's class: refused here, not at the first call.
                raise TypeError(f"{cls.__name__}.{name}: a record's methods may not use super() or __class__")
            setattr(tuple_class, name, value)
    tuple_class.__qualname__ = cls.__qualname__
    if cls.__doc__ is not None:
        tuple_class.__doc__ = cls.__doc__
    tuple_class.__annotations__ = dict(namespace.get("__annotations__", {}))
    return tuple_class
