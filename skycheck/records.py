"""Frozen record classes: what ``dataclass(frozen=True, slots=True)`` makes, built in less time.

Every run imports about 40 frozen classes. CPython 3.10 and 3.11's ``dataclasses`` compile each
generated method with an ``exec`` of its own (six for a frozen class) and, for ``slots=True``,
create the class a second time: about 0.4 ms a class, 15 ms of a 75 ms offline check. ``record``
compiles only ``__init__`` (one ``exec``; it is the method on a hot path, 30,000 calls at 10,000
RBAC objects, and it calls ``object.__setattr__`` without looking it up per field), compares and
hashes the tuple of field values through one ``attrgetter``, shares the methods that need no
per-class code, and creates the slotted class once.

The classes keep ``dataclasses``' own ``Field`` objects, so ``dataclasses.fields``, ``replace``,
``asdict`` and ``is_dataclass`` work on them unchanged. What ``record`` does not do, it refuses
with a TypeError: base classes, ``ClassVar``/``InitVar``/``KW_ONLY`` annotations, ``field()``
options other than ``default`` and ``default_factory``, and methods of its own in the class body.
A record is not meant to be subclassed (its ``__setattr__`` refuses every name). Unlike
``dataclass``, it leaves a class without a docstring without one (``dataclass`` writes its
signature there, through ``inspect.signature``). ``tests/unit/test_records.py`` holds records to
twins made by ``dataclass(frozen=True, slots=True)``.
"""

from __future__ import annotations

import dataclasses
import inspect  # imported by dataclasses already
import reprlib
from collections.abc import Callable
from dataclasses import MISSING, Field, FrozenInstanceError
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:  # typing has it only from 3.11; it changes nothing at run time.

    def dataclass_transform(**_: object) -> Callable[[Any], Any]:
        return lambda decorator: decorator


_T = TypeVar("_T")

# Names ``record`` writes into the class; one written by hand would be lost or conflict.
_GENERATED = frozenset(
    {
        "__init__",
        "__repr__",
        "__eq__",
        "__hash__",
        "__setattr__",
        "__delattr__",
        "__getstate__",
        "__setstate__",
        "__match_args__",
        "__slots__",
        "__dataclass_fields__",
    }
)
_PSEUDO_FIELDS = ("ClassVar", "InitVar", "KW_ONLY")


class _FactoryDefault:
    """The ``__init__`` default of a ``default_factory`` field: "not given, call the factory"."""

    def __repr__(self) -> str:
        return "<factory>"  # as dataclasses shows it in a signature


_HAS_FACTORY = _FactoryDefault()


# The methods without per-class code, shared by every record; each does what the method
# ``dataclasses`` generates for a frozen, slotted class does (CPython Lib/dataclasses.py:
# _frozen_get_del_attr, _repr_fn, _dataclass_getstate, _dataclass_setstate).
def _frozen_setattr(self: object, name: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


@reprlib.recursive_repr()
def _repr(self: Any) -> str:
    values = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__dataclass_fields__)
    return f"{self.__class__.__qualname__}({values})"


def _getstate(self: Any) -> list[object]:
    return [getattr(self, name) for name in self.__dataclass_fields__]


def _setstate(self: Any, state: list[object]) -> None:
    for name, value in zip(self.__dataclass_fields__, state, strict=False):
        object.__setattr__(self, name, value)


def _field(cls: type, name: str, annotation: object) -> Field[Any]:
    """The ``dataclasses.Field`` of one annotated name, as ``dataclasses._get_field`` makes it."""
    text = annotation if isinstance(annotation, str) else repr(annotation)
    if any(pseudo in text for pseudo in _PSEUDO_FIELDS):
        raise TypeError(f"record {cls.__qualname__}.{name}: {text} is not supported")
    given = cls.__dict__.get(name, MISSING)
    if isinstance(given, Field):
        plain = given.init and given.repr and given.hash is None and given.compare
        if not plain or given.metadata or given.kw_only is True:
            raise TypeError(
                f"record {cls.__qualname__}.{name}: only default and default_factory are supported"
            )
        made = given
    else:
        # dataclasses refuses an unhashable default, so that a list is not shared by instances.
        if given is not MISSING and type(given).__hash__ is None:
            raise ValueError(
                f"mutable default {type(given)} for field {name} is not allowed: "
                "use default_factory"
            )
        made = dataclasses.field(default=given)
    made.name = name
    made.type = annotation
    made.kw_only = False
    made._field_type = dataclasses._FIELD  # type: ignore[attr-defined]  # what fields() selects
    return made


def _init(cls: type, fields: dict[str, Field[Any]]) -> Callable[..., None]:
    """``__init__`` for these fields, as dataclasses writes it for a frozen class: one exec."""
    scope: dict[str, Any] = {"_setattr": object.__setattr__, "_HAS_FACTORY": _HAS_FACTORY}
    params: list[str] = []
    body: list[str] = []
    for name, f in fields.items():
        value = name
        if f.default_factory is not MISSING:
            scope[f"_factory_{name}"] = f.default_factory
            params.append(f"{name}=_HAS_FACTORY")
            value = f"_factory_{name}() if {name} is _HAS_FACTORY else {name}"
        elif f.default is not MISSING:
            scope[f"_default_{name}"] = f.default
            params.append(f"{name}=_default_{name}")
        elif params and "=" in params[-1]:
            raise TypeError(f"non-default argument {name!r} follows default argument")
        else:
            params.append(name)
        body.append(f"    _setattr(self, {name!r}, {value})")
    lines = "\n".join(body) or "    pass"
    exec(f"def __init__(self, {', '.join(params)}):\n{lines}\n", scope)
    init: Callable[..., None] = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    # As dataclasses annotates it, so that inspect.signature shows the field types.
    init.__annotations__ = {name: f.type for name, f in fields.items()}
    init.__annotations__["return"] = None
    return init


def _eq_and_hash(cls: type, names: tuple[str, ...]) -> tuple[Callable[..., Any], ...]:
    """``__eq__`` and ``__hash__`` over the tuple of field values, as dataclasses compares.

    Closures over one ``attrgetter`` rather than compiled code: neither is on a hot path, and
    compiling them cost as much as compiling ``__init__``.
    """
    if len(names) > 1:
        values: Callable[[Any], tuple[Any, ...]] = attrgetter(*names)
    elif names:
        value = attrgetter(names[0])
        values = lambda obj: (value(obj),)  # noqa: E731
    else:
        values = lambda obj: ()  # noqa: E731

    def __eq__(self: object, other: object) -> Any:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    def __hash__(self: object) -> int:
        return hash(values(self))

    __eq__.__qualname__ = f"{cls.__qualname__}.__eq__"
    __hash__.__qualname__ = f"{cls.__qualname__}.__hash__"
    return __eq__, __hash__


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, Field))
def record(cls: type[_T]) -> type[_T]:
    """The class as ``dataclass(frozen=True, slots=True)`` would make it (see the module)."""
    if cls.__bases__ != (object,):
        raise TypeError(f"record {cls.__qualname__}: base classes are not supported")
    own = _GENERATED.intersection(cls.__dict__)
    if own:
        raise TypeError(f"record {cls.__qualname__}: defines {', '.join(sorted(own))} itself")
    annotations = inspect.get_annotations(cls)  # the class's own, as strings here
    fields = {name: _field(cls, name, annotation) for name, annotation in annotations.items()}
    namespace = {
        key: value
        for key, value in cls.__dict__.items()
        if key not in fields and key not in ("__dict__", "__weakref__")
    }
    namespace["__eq__"], namespace["__hash__"] = _eq_and_hash(cls, tuple(fields))
    namespace.update(
        __init__=_init(cls, fields),
        __slots__=tuple(fields),
        __match_args__=tuple(fields),
        __dataclass_fields__=fields,
        __repr__=_repr,
        __setattr__=_frozen_setattr,
        __delattr__=_frozen_delattr,
        __getstate__=_getstate,
        __setstate__=_setstate,
    )
    metaclass: Any = type(cls)
    made: type[_T] = metaclass(cls.__name__, cls.__bases__, namespace)
    made.__qualname__ = cls.__qualname__
    return made
