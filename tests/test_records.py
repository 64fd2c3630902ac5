"""agent.records.record: class-declared named tuples without typing."""

from __future__ import annotations

import pickle

import pytest

from agent.records import record


@record
class Point:
    """A point."""

    x: int
    y: int = 0
    label: str = ""

    @property
    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)

    def moved(self, dx: int) -> "Point":
        return self._replace(x=self.x + dx)


def test_fields_in_order_with_defaults():
    p = Point(3)
    assert p == (3, 0, "") and p._fields == ("x", "y", "label")
    assert Point(1, 2, "a") == Point(x=1, y=2, label="a")
    assert Point._field_defaults == {"y": 0, "label": ""}
    with pytest.raises(TypeError):
        Point()  # x has no default


def test_methods_properties_and_docstring_are_kept():
    p = Point(-2, 5)
    assert p.norm1 == 7
    moved = p.moved(4)
    assert moved == Point(2, 5) and type(moved) is Point
    assert Point.__doc__ == "A point."
    assert Point.__qualname__ == "Point" and Point.__module__ == __name__
    assert repr(p) == "Point(x=-2, y=5, label='')"


def test_it_is_a_plain_tuple_class():
    assert Point.__mro__ == (Point, tuple, object)
    assert not hasattr(Point(1), "__dict__")  # no per-instance dict
    assert pickle.loads(pickle.dumps(Point(1, 2))) == Point(1, 2)
    assert Point.__annotations__ == {"x": "int", "y": "int", "label": "str"}


def test_a_field_without_default_after_one_with_is_refused():
    with pytest.raises(TypeError, match="'b' without a default"):
        @record
        class Bad:
            a: int = 0
            b: int


def test_inheritance_is_refused():
    class Base:
        pass

    with pytest.raises(TypeError, match="does not inherit"):
        @record
        class Child(Base):
            a: int


def test_names_the_tuple_defines_are_refused():
    with pytest.raises(TypeError, match="may not define _replace"):
        @record
        class Bad:
            a: int

            def _replace(self, **kw):
                return self


def test_methods_using_super_are_refused_at_definition():
    with pytest.raises(TypeError, match="super"):
        @record
        class Bad:
            a: int

            def __repr__(self):
                return super().__repr__()


def test_a_class_without_annotated_fields_is_refused():
    with pytest.raises(TypeError, match="annotated fields"):
        @record
        class Empty:
            a = 1
