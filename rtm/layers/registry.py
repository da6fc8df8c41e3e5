"""The registry of operationalizations: found once, chosen by name, resolved with a context.

Every module of :mod:`rtm.layers.operationalizations` (but ``base``) defines an
``OPERATIONALIZATION``; they are found when first asked for. ``--operationalization``
takes their names (comma-separated) or ``both`` (proximity and density, RTMDx's two).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence
from functools import cache

from rtm.errors import ParameterError
from rtm.layers.operationalizations.base import LayerContext, Operationalization

__all__ = [
    "ALIASES",
    "available_operationalizations",
    "describe_candidate",
    "get_operationalization",
    "resolve_operationalizations",
]

#: Names that stand for several operationalizations.
ALIASES: dict[str, tuple[str, ...]] = {"both": ("proximity", "density")}


@cache
def _registry() -> dict[str, Operationalization]:
    from rtm.layers import operationalizations as package

    found: dict[str, Operationalization] = {}
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if module.name == "base":
            continue
        entry = importlib.import_module(f"{package.__name__}.{module.name}").OPERATIONALIZATION
        if entry.name in found:  # pragma: no cover - a programming error
            raise RuntimeError(f"two operationalizations are named {entry.name!r}")
        found[entry.name] = entry
    return found


def available_operationalizations() -> tuple[str, ...]:
    """The names of the registered operationalizations, sorted."""
    return tuple(sorted(_registry()))


def get_operationalization(name: str) -> Operationalization:
    """The operationalization called ``name``; the error lists the valid names."""
    registry = _registry()
    if name not in registry:
        valid = ", ".join(repr(n) for n in (*ALIASES, *sorted(registry)))
        raise ParameterError(f"--operationalization must be one of {valid}; got {name!r}")
    return registry[name]


def resolve_operationalizations(
    choice: str | Sequence[str], context: LayerContext | None = None
) -> tuple[Operationalization, ...]:
    """The operationalizations ``choice`` names, in order, fitted to ``context``.

    ``choice`` is a name, an alias (``both``), a comma-separated list or a sequence of
    names. With a context, an operationalization that stands in for another when its
    context is given takes its place (network proximity for proximity, with a network).

    Examples
    --------
    >>> [op.name for op in resolve_operationalizations("both")]
    ['proximity', 'density']
    """
    names: list[str] = []
    for part in [choice] if isinstance(choice, str) else list(choice):
        for name in (n.strip() for n in str(part).split(",")):
            for resolved in ALIASES.get(name, (name,)):
                if resolved not in names:
                    names.append(resolved)
    if not names:
        raise ParameterError("--operationalization names no operationalization")
    chosen = [get_operationalization(name) for name in names]
    context = context or LayerContext()
    substitutes = {
        op.replaces: op
        for op in _registry().values()
        if op.replaces is not None and op.available(context)
    }
    out = [substitutes.get(op.name, op) for op in chosen]
    for op in out:
        if not op.available(context):
            raise ParameterError(f"--operationalization {op.name} is not available here")
    columns = [op.column for op in out]
    if len(set(columns)) != len(columns):
        raise ParameterError(
            f"--operationalization {','.join(names)}: two of them make the same candidates"
        )
    return tuple(out)


def describe_candidate(
    column: str, factor: str, distance: float, unit: str = "m", *, network: bool = False
) -> str:
    """Plain words for a candidate as a run names it (``bars:proximity:150``).

    ``column`` is the operationalization's part of the name; several operationalizations
    may share one (network proximity keeps proximity's), so ``network`` says whether the
    run measured along a street network. A name no registered operationalization has
    (a run folder from another rtm) is still described, generically.
    """
    sharing = [o for o in _registry().values() if o.column == column]
    if network:
        sharing.sort(key=lambda o: o.replaces is None)
    else:
        sharing = [o for o in sharing if o.replaces is None] or sharing
    if not sharing:
        return f"{column} of {factor} ({distance:g} {unit})"
    return sharing[0].describe(factor, distance, unit)
