"""``record`` classes behave as ``dataclass(frozen=True, slots=True)`` ones: each case below is
declared twice, once with each decorator, and the two must agree on everything observable."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import subprocess
import sys
import weakref
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Any

import pytest

from skycheck import records
from skycheck.records import record

# One class body per case; ``{deco}`` becomes the decorator. Fields of every kind that skycheck
# declares: required, plain defaults (None, tuples, enums), default_factory, and a class
# attribute, a property, a method and a classmethod beside them.
BODIES = {
    "plain": """
class C:
    '''A rule.'''
    verbs: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
""",
    "required and defaults": """
class C:
    '''A binding.'''
    name: str
    namespace: str
    ref: object
    subjects: tuple[object, ...] = ()
    note: str | None = None

    kind = "RoleBinding"

    @property
    def where(self) -> str:
        return f"{self.namespace}/{self.name}"

    def renamed(self, name: str) -> C:
        return dataclasses.replace(self, name=name)

    @classmethod
    def empty(cls, name: str) -> C:
        return cls(name, "", None)
""",
    "factory": """
class C:
    '''A config.'''
    source: str
    items: list[str] = field(default_factory=list)
    notes: tuple[str, ...] = field(default=())
""",
    "one field": """
class C:
    '''One.'''
    value: object
""",
    "no fields": """
class C:
    '''Nothing.'''
""",
}


def _twins(body: str) -> tuple[type, type]:
    made = []
    for deco in ("record", "dataclass(frozen=True, slots=True)"):
        scope: dict[str, Any] = {
            "record": record,
            "dataclass": dataclass,
            "field": field,
            "dataclasses": dataclasses,
            "__name__": __name__,
        }
        exec(f"from __future__ import annotations\n@{deco}{body}", scope)
        made.append(scope["C"])
    return made[0], made[1]


# Constructor arguments per case (positional, keyword), the same for both twins.
ARGS: dict[str, list[tuple[tuple[Any, ...], dict[str, Any]]]] = {
    "plain": [((), {}), ((("get",), ("",)), {}), ((), {"names": ("a", "b")})],
    "required and defaults": [
        (("sky", "default", ("Role", "r")), {}),
        (("sky", "team", None, ("u",)), {"note": "x"}),
        ((), {"name": "n", "namespace": "", "ref": 3}),
    ],
    "factory": [(("f",), {}), (("f", ["a"]), {"notes": ("n",)})],
    "one field": [((1,), {}), (("x",), {}), ((None,), {}), ((("t", 1.5),), {}), (([1],), {})],
    "no fields": [((), {})],
}


@pytest.fixture(params=sorted(BODIES))
def case(request: pytest.FixtureRequest) -> tuple[str, type, type]:
    mine, theirs = _twins(BODIES[request.param])
    return request.param, mine, theirs


def _hashable(obj: object) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


def test_class_shape_matches(case: tuple[str, type, type]) -> None:
    _, mine, theirs = case
    assert mine.__slots__ == theirs.__slots__
    assert mine.__match_args__ == theirs.__match_args__
    assert mine.__qualname__ == theirs.__qualname__ and mine.__module__ == theirs.__module__
    assert mine.__doc__ == theirs.__doc__
    assert str(inspect.signature(mine)) == str(inspect.signature(theirs))
    assert dataclasses.is_dataclass(mine) and dataclasses.is_dataclass(theirs)
    mine_fields = [(f.name, f.type, f.default, f.default_factory) for f in dataclasses.fields(mine)]
    theirs_fields = [
        (f.name, f.type, f.default, f.default_factory) for f in dataclasses.fields(theirs)
    ]
    assert mine_fields == theirs_fields
    for mine_field, theirs_field in zip(
        dataclasses.fields(mine), dataclasses.fields(theirs), strict=True
    ):
        assert repr(mine_field) == repr(theirs_field)
    for name, value in vars(theirs).items():
        if not name.startswith("__"):
            assert type(vars(mine)[name]) is type(value), name


def test_instances_match(case: tuple[str, type, type]) -> None:
    name, mine, theirs = case
    for args, kwargs in ARGS[name]:
        a, b = mine(*args, **kwargs), theirs(*args, **kwargs)
        assert repr(a) == repr(b).replace(theirs.__qualname__, mine.__qualname__)
        assert dataclasses.asdict(a) == dataclasses.asdict(b)
        assert dataclasses.astuple(a) == dataclasses.astuple(b)
        assert _hashable(a) == _hashable(b)
        if _hashable(b):
            assert hash(a) == hash(b)
        same = mine(*args, **kwargs)
        assert (a == same) is True and (a != same) is False
        assert a != b and b != a  # different classes are never equal, in either direction
        assert a.__eq__(object()) is NotImplemented and b.__eq__(object()) is NotImplemented
        assert not hasattr(a, "__dict__") and not hasattr(b, "__dict__")
        for obj in (a, b):
            with pytest.raises(TypeError):
                weakref.ref(obj)


def test_equality_and_hash_follow_every_field() -> None:
    mine, theirs = _twins(BODIES["required and defaults"])
    base = ("sky", "team", ("Role", "r"), ("u",), "note")
    for cls in (mine, theirs):
        assert cls(*base) == cls(*base) and hash(cls(*base)) == hash(cls(*base))
        for i in range(len(base)):
            changed = (*base[:i], "other", *base[i + 1 :])
            assert cls(*changed) != cls(*base), i
            assert (cls(*changed) == cls(*base)) is False, i
    assert len({mine(*base), mine(*base), mine("x", *base[1:])}) == 2
    # The hash is the hash of the tuple of field values, as dataclass makes it.
    assert hash(mine(*base)) == hash(theirs(*base)) == hash(base)


def test_frozen_the_same_way(case: tuple[str, type, type]) -> None:
    name, mine, theirs = case
    args, kwargs = ARGS[name][0]
    for attr in mine.__slots__:
        errors = []
        for cls in (mine, theirs):
            obj = cls(*args, **kwargs)
            with pytest.raises(FrozenInstanceError) as assigned:
                setattr(obj, attr, 1)
            with pytest.raises(FrozenInstanceError) as deleted:
                delattr(obj, attr)
            errors.append((str(assigned.value), str(deleted.value)))
        assert errors[0] == errors[1]
    # A name that is not a field: 3.11's dataclass fails inside its own __setattr__ (it compares
    # with the class it made before adding slots), a record says it is frozen. Neither sets it.
    obj = mine(*args, **kwargs)
    with pytest.raises(FrozenInstanceError):
        obj.other = 1
    with pytest.raises((AttributeError, TypeError)):
        theirs(*args, **kwargs).other = 1
    assert not hasattr(obj, "other")


def test_replace_copy_and_pickle(case: tuple[str, type, type]) -> None:
    name, mine, theirs = case
    for args, kwargs in ARGS[name]:
        a, b = mine(*args, **kwargs), theirs(*args, **kwargs)
        for obj in (a, b):
            assert dataclasses.replace(obj) == obj
            assert copy.copy(obj) == obj and copy.deepcopy(obj) == obj
        # What pickle and copy store: the state of both is the list of field values.
        assert a.__reduce_ex__(4)[2] == b.__reduce_ex__(4)[2]
        for attr in mine.__slots__:
            changed = dataclasses.replace(a, **{attr: "new"})
            assert getattr(changed, attr) == "new" and type(changed) is mine
            assert dataclasses.astuple(changed) == dataclasses.astuple(
                dataclasses.replace(b, **{attr: "new"})
            )
    rule = PickledRule(("get",), ("",))
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(rule, protocol=protocol)) == rule


@record
class PickledRule:
    """A record at module level, so that pickle can find its class."""

    verbs: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


def test_default_factory_called_per_instance() -> None:
    mine, theirs = _twins(BODIES["factory"])
    for cls in (mine, theirs):
        a, b = cls("x"), cls("y")
        assert a.items == [] and a.items is not b.items
        assert cls("z", ["given"]).items == ["given"]


def test_methods_properties_and_class_attributes_kept() -> None:
    mine, _ = _twins(BODIES["required and defaults"])
    obj = mine("sky", "team", None)
    assert obj.kind == mine.kind == "RoleBinding"
    assert obj.where == "team/sky"
    assert obj.renamed("other") == mine("other", "team", None)
    assert mine.empty("e") == mine("e", "", None)
    assert mine.__init__.__qualname__ == "C.__init__"


def test_wrong_arguments_fail_as_for_a_dataclass() -> None:
    mine, theirs = _twins(BODIES["required and defaults"])
    for call in (lambda c: c(), lambda c: c("a"), lambda c: c("a", "b", "c", nope=1)):
        with pytest.raises(TypeError):
            call(mine)
        with pytest.raises(TypeError):
            call(theirs)


def test_recursive_repr_does_not_recurse_forever() -> None:
    mine, theirs = _twins(BODIES["one field"])
    for cls in (mine, theirs):
        box: list[object] = []
        obj = cls(box)
        box.append(obj)
        assert repr(obj) == "C(value=[...])"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("class C(Exception):\n    x: int\n", TypeError),
        ("class C:\n    x: ClassVar[int] = 1\n", TypeError),
        ("class C:\n    x: InitVar[int]\n", TypeError),
        ("class C:\n    x: int = field(default=1, repr=False)\n", TypeError),
        ("class C:\n    x: int = field(default=1, compare=False)\n", TypeError),
        ("class C:\n    x: int = field(default=1, metadata={'a': 1})\n", TypeError),
        ("class C:\n    x: int\n    def __eq__(self, other):\n        return True\n", TypeError),
        ("class C:\n    __slots__ = ('x',)\n    x: int\n", TypeError),
        ("class C:\n    x: list[int] = []\n", ValueError),
        ("class C:\n    x: int = 1\n    y: int\n", TypeError),
    ],
)
def test_refuses_what_it_does_not_do(body: str, error: type[Exception]) -> None:
    scope: dict[str, Any] = {"record": record, "field": field, "__name__": __name__}
    with pytest.raises(error):
        exec(f"from __future__ import annotations\n@record\n{body}", scope)


def test_replace_does_what_dataclasses_replace_does(case: tuple[str, type, type]) -> None:
    name, mine, theirs = case
    for args, kwargs in ARGS[name]:
        a, b = mine(*args, **kwargs), theirs(*args, **kwargs)
        for obj in (a, b):  # a record, and a dataclass (handed to dataclasses.replace)
            assert records.replace(obj) == dataclasses.replace(obj) == obj
            assert type(records.replace(obj)) is type(obj)
            for attr in mine.__slots__:
                assert records.replace(obj, **{attr: "new"}) == dataclasses.replace(
                    obj, **{attr: "new"}
                )
            with pytest.raises(TypeError):
                records.replace(obj, nope=1)
            with pytest.raises(TypeError):
                dataclasses.replace(obj, nope=1)


def test_fields_are_made_once() -> None:
    mine, _ = _twins(BODIES["factory"])
    first = dataclasses.fields(mine)
    assert all(a is b for a, b in zip(first, dataclasses.fields(mine("x")), strict=True))
    assert mine.__dataclass_fields__ is mine("y").__dataclass_fields__


def test_records_do_not_import_dataclasses() -> None:
    # dataclasses imports inspect, ast, dis and tokenize: more than every record together.
    code = (
        "import sys\n"
        "from skycheck.records import record, replace\n"
        "@record\n"
        "class C:\n"
        "    a: int\n"
        "    b: tuple = ()\n"
        "c = replace(C(1), b=(2,))\n"
        "assert (c, hash(c) == hash(C(1, (2,)))) == (C(1, (2,)), True), c\n"
        "assert not {'dataclasses', 'inspect'} & set(sys.modules), sorted(sys.modules)\n"
        "try:\n"
        "    c.a = 2\n"
        "except AttributeError as error:\n"
        "    assert type(error).__name__ == 'FrozenInstanceError'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
