"""Frozen record classes: what ``dataclass(frozen=True, slots=True)`` makes, built in less time.

Every run imports about 40 frozen classes. CPython 3.10 and 3.11's ``dataclasses`` compile each
generated method with an ``exec`` of its own (six for a frozen class) and, for ``slots=True``,
create the class a second time: about 0.4 ms a class, 15 ms of a 75 ms offline check. ``record``
compiles only ``__init__`` (one ``exec``; it is the method on a hot path, 30,000 calls at 10,000
RBAC objects, and it stores each field through its slot's setter, bound once), compares and
hashes the tuple of field values through one ``attrgetter``, shares the methods that need no
per-class code, and creates the slotted class once.

Nor does it import ``dataclasses`` (which imports ``inspect``, ``ast``, ``dis`` and ``tokenize``:
more than all the records together). A record's ``__dataclass_fields__`` holds ``dataclasses``'
own ``Field`` objects, made on first use, so ``dataclasses.fields``, ``replace``, ``asdict`` and
``is_dataclass`` work on records unchanged; :func:`replace` here does what
``dataclasses.replace`` does without the import.

What ``record`` does not do, it refuses with a TypeError: base classes,
``ClassVar``/``InitVar``/``KW_ONLY`` annotations, ``field()`` options other than ``default`` and
``default_factory``, and methods of its own in the class body. A record is not meant to be
subclassed (its ``__setattr__`` refuses every name). Unlike ``dataclass``, it leaves a class
without a docstring without one (``dataclass`` writes its signature there, through
``inspect.signature``). ``tests/unit/test_records.py`` holds records to twins made by
``dataclass(frozen=True, slots=True)``.
"""

from __future__ import annotations

import reprlib
import sys
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from dataclasses import Field
    from dataclasses import field as _field_specifier

    from typing_extensions import dataclass_transform
else:  # For the type checker only (typing has it from 3.11); nothing to do at run time.
    _field_specifier = None

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
_MISSING: Any = object()  # no default (dataclasses.MISSING, without the import)


class _FactoryDefault:
    """The ``__init__`` default of a ``default_factory`` field: "not given, call the factory"."""

    def __repr__(self) -> str:
        return "<factory>"  # as dataclasses shows it in a signature


_HAS_FACTORY = _FactoryDefault()


# The methods without per-class code, shared by every record; each does what the method
# ``dataclasses`` generates for a frozen, slotted class does (CPython Lib/dataclasses.py:
# _frozen_get_del_attr, _repr_fn, _dataclass_getstate, _dataclass_setstate).
def _frozen_setattr(self: object, name: str, value: object) -> None:
    from dataclasses import FrozenInstanceError  # the error callers catch; imported only here

    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    from dataclasses import FrozenInstanceError

    raise FrozenInstanceError(f"cannot delete field {name!r}")


@reprlib.recursive_repr()
def _repr(self: Any) -> str:
    values = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
    return f"{self.__class__.__qualname__}({values})"


def _getstate(self: Any) -> list[object]:
    return [getattr(self, name) for name in self.__match_args__]


def _setstate(self: Any, state: list[object]) -> None:
    for name, value in zip(self.__match_args__, state, strict=False):
        object.__setattr__(self, name, value)


class _Spec:
    """One field as the class body declares it: its annotation, and a default or a factory."""

    __slots__ = ("annotation", "default", "factory", "given")

    def __init__(self, cls: type, name: str, annotation: object) -> None:
        text = annotation if isinstance(annotation, str) else repr(annotation)
        if any(pseudo in text for pseudo in _PSEUDO_FIELDS):
            raise TypeError(f"record {cls.__qualname__}.{name}: {text} is not supported")
        self.annotation = annotation
        self.default: Any = cls.__dict__.get(name, _MISSING)
        self.factory: Any = _MISSING
        self.given: Field[Any] | None = None
        # A ``field()`` can only exist if its module has imported dataclasses already.
        dataclasses = sys.modules.get("dataclasses")
        if dataclasses is not None and isinstance(self.default, dataclasses.Field):
            given = self.given = self.default
            plain = given.init and given.repr and given.hash is None and given.compare
            if not plain or given.metadata or given.kw_only is True:
                raise TypeError(
                    f"record {cls.__qualname__}.{name}: only default and default_factory "
                    "are supported"
                )
            missing = dataclasses.MISSING
            self.default = _MISSING if given.default is missing else given.default
            self.factory = _MISSING if given.default_factory is missing else given.default_factory
        # dataclasses refuses an unhashable default, so that a list is not shared by instances.
        elif self.default is not _MISSING and type(self.default).__hash__ is None:
            raise ValueError(
                f"mutable default {type(self.default)} for field {name} is not allowed: "
                "use default_factory"
            )


class _Fields:
    """A record's ``__dataclass_fields__``: ``dataclasses.Field`` objects, made on first use.

    Only code that has imported ``dataclasses`` asks for them (``fields``, ``replace``,
    ``asdict``, ``is_dataclass``), so making them then costs no import.
    """

    def __init__(self, specs: dict[str, _Spec]) -> None:
        self._specs = specs
        self._fields: dict[str, Field[Any]] | None = None

    def __get__(self, obj: object, owner: type | None = None) -> dict[str, Field[Any]]:
        if self._fields is None:
            self._fields = {name: _field(name, spec) for name, spec in self._specs.items()}
        return self._fields


def _field(name: str, spec: _Spec) -> Field[Any]:
    """The ``dataclasses.Field`` of one field, as ``dataclasses._get_field`` makes it."""
    import dataclasses

    made: Field[Any]
    if spec.given is not None:
        made = spec.given
    elif spec.factory is not _MISSING:
        made = dataclasses.field(default_factory=spec.factory)
    elif spec.default is not _MISSING:
        made = dataclasses.field(default=spec.default)
    else:
        made = dataclasses.field()
    made.name = name
    made.type = spec.annotation
    made.kw_only = False
    made._field_type = dataclasses._FIELD  # type: ignore[attr-defined]  # what fields() selects
    return made


def _init(cls: type, specs: dict[str, _Spec]) -> Callable[..., None]:
    """``__init__`` for these fields, as dataclasses writes it for a frozen class: one exec.

    ``cls`` is the slotted class. Each field is set through its slot's own setter
    (``member_descriptor.__set__``, bound once here), not ``object.__setattr__(self, name,
    value)`` as dataclasses does: the same store, without looking the name up in the class and
    slicing the arguments at every call (about a third less time an object).
    """
    scope: dict[str, Any] = {"_HAS_FACTORY": _HAS_FACTORY}
    params: list[str] = []
    body: list[str] = []
    for name, spec in specs.items():
        scope[f"_set_{name}"] = cls.__dict__[name].__set__
        value = name
        if spec.factory is not _MISSING:
            scope[f"_factory_{name}"] = spec.factory
            params.append(f"{name}=_HAS_FACTORY")
            value = f"_factory_{name}() if {name} is _HAS_FACTORY else {name}"
        elif spec.default is not _MISSING:
            scope[f"_default_{name}"] = spec.default
            params.append(f"{name}=_default_{name}")
        elif params and "=" in params[-1]:
            raise TypeError(f"non-default argument {name!r} follows default argument")
        else:
            params.append(name)
        body.append(f"    _set_{name}(self, {value})")
    lines = "\n".join(body) or "    pass"
    exec(f"def __init__(self, {', '.join(params)}):\n{lines}\n", scope)
    init: Callable[..., None] = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    # As dataclasses annotates it, so that inspect.signature shows the field types.
    init.__annotations__ = {name: spec.annotation for name, spec in specs.items()}
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


@dataclass_transform(frozen_default=True, field_specifiers=(_field_specifier,))
def record(cls: type[_T]) -> type[_T]:
    """The class as ``dataclass(frozen=True, slots=True)`` would make it (see the module)."""
    if cls.__bases__ != (object,):
        raise TypeError(f"record {cls.__qualname__}: base classes are not supported")
    own = _GENERATED.intersection(cls.__dict__)
    if own:
        raise TypeError(f"record {cls.__qualname__}: defines {', '.join(sorted(own))} itself")
    # The class's own annotations (strings here); inspect.get_annotations would import inspect.
    annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
    specs = {name: _Spec(cls, name, annotation) for name, annotation in annotations.items()}
    names = tuple(specs)
    namespace = {
        key: value
        for key, value in cls.__dict__.items()
        if key not in specs and key not in ("__dict__", "__weakref__")
    }
    namespace["__eq__"], namespace["__hash__"] = _eq_and_hash(cls, names)
    namespace.update(
        __slots__=names,
        __match_args__=names,
        __dataclass_fields__=_Fields(specs),
        __repr__=_repr,
        __setattr__=_frozen_setattr,
        __delattr__=_frozen_delattr,
        __getstate__=_getstate,
        __setstate__=_setstate,
    )
    metaclass: Any = type(cls)
    made: type[_T] = metaclass(cls.__name__, cls.__bases__, namespace)
    made.__qualname__ = cls.__qualname__
    made.__init__ = _init(made, specs)  # type: ignore[method-assign]  # (it needs the slots)
    return made


def _replace(obj: _T, /, **changes: Any) -> _T:
    """``dataclasses.replace``: a copy of ``obj`` with ``changes``, through its ``__init__``."""
    if not isinstance(type(obj).__dict__.get("__dataclass_fields__"), _Fields):
        import dataclasses  # not a record (kube.Limits): dataclasses' own

        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    for name in type(obj).__match_args__:  # type: ignore[attr-defined]
        if name not in changes:
            changes[name] = getattr(obj, name)
    return type(obj)(**changes)


if TYPE_CHECKING:
    # The type checker sees dataclasses.replace, whose arguments mypy checks field by field.
    from dataclasses import replace as replace
else:
    replace = _replace
