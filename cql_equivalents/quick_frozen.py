"""A faster `__init__` for the frozen dataclasses a call makes by the hundred (readings, dose lines, triggers).

A frozen dataclass's own `__init__` sets each field through `object.__setattr__` (~0.16 us a field here): a
nine-field `Observed` took 2.1 us to build, and a 50-resource call builds a few hundred fields that way. The
`__init__` made here has the same signature (names, order, defaults, default factories) and stores the same
values straight into the instance's `__dict__` (0.7 us for `Observed`). Everything else stays the dataclass's:
eq, hash, repr, `dataclasses.replace`, and assignment after construction still raising FrozenInstanceError.

Only for what it can copy exactly: a frozen dataclass with a `__dict__` (no slots), no `__post_init__`, no
InitVar, no keyword-only or init=False field. Anything else is refused when the class is defined.
"""
from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

class _NotPassed:
    """Stands for "not passed" where a field has a default factory (shown as the dataclass shows its own)."""

    def __repr__(self) -> str:
        return "<factory>"


_NO_VALUE = _NotPassed()


def quick_frozen(cls: type[T]) -> type[T]:
    """Decorate a class above its `@dataclass(frozen=True)`."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen:
        raise TypeError(f"{cls.__name__}: quick_frozen is for frozen dataclasses")
    if hasattr(cls, "__post_init__") or "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: quick_frozen cannot copy __post_init__ or slots")
    arguments, lines = [], []
    namespace: dict[str, Any] = {"_NO_VALUE": _NO_VALUE}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]  # checked a dataclass above
        if not field.init or field.kw_only or field._field_type is not dataclasses._FIELD:  # type: ignore[attr-defined]
            raise TypeError(f"{cls.__name__}.{field.name}: quick_frozen copies plain init fields only")
        name = field.name
        if name in ("self", "_instance_values") or name.startswith(("_default_", "_factory_", "_NO_VALUE")):
            raise TypeError(f"{cls.__name__}.{name}: a field name quick_frozen's __init__ uses itself")
        if field.default is not dataclasses.MISSING:
            namespace[f"_default_{name}"] = field.default
            arguments.append(f"{name}=_default_{name}")
        elif field.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{name}"] = field.default_factory
            arguments.append(f"{name}=_NO_VALUE")
            lines.append(f"    if {name} is _NO_VALUE:\n        {name} = _factory_{name}()\n")
        else:
            arguments.append(name)
        lines.append(f"    _instance_values[{name!r}] = {name}\n")
    source = f"def __init__(self, {', '.join(arguments)}):\n    _instance_values = self.__dict__\n" + "".join(lines)
    exec(source, namespace)  # noqa: S102 - our own field names, checked above; as dataclasses itself does
    init: Any = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    setattr(cls, "__init__", init)  # noqa: B010 - assigned, not called: a method assignment mypy would refuse
    return cls
