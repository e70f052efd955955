"""Every operation of the core's registry is reachable through the generated Python surface, and the
generated table is the registry."""

from __future__ import annotations

import datetime
import inspect
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import austa
from austa import _native


def test_the_generated_table_is_the_registry() -> None:
    scope_ops, database_ops = _native.operations()
    assert set(austa.OPERATIONS) == set(scope_ops) | set(database_ops), "regenerate: cargo run -p austa-codegen"
    for name, (target, _, _, _) in austa.OPERATIONS.items():
        assert (target == "scope") == (name in scope_ops), name


def _text(name: str) -> str:
    return {
        "phone": "+5511987654321",
        "cpf": "529.982.247-25",
        "email": "ana@example.com",
        "cnpj": "11.222.333/0001-81",
        "checksum": "0" * 64,
        "phone_number_id": "109876543210",
        "action": "LOGIN",
    }.get(name, "teste")


def _sample(param: inspect.Parameter, tmp_path: Path) -> Any:
    """A plausible value for a required parameter, from its name and annotation."""
    annotation = str(param.annotation)
    name = param.name
    if annotation == "Id":
        return uuid.uuid4()
    if annotation.startswith("datetime.datetime"):
        return datetime.datetime.now(datetime.timezone.utc)
    if annotation == "int":
        return 1
    if annotation == "float":
        return 60.0
    if annotation == "PathLike":
        return tmp_path / "export.json"
    if annotation == "EntityType":
        return austa.EntityType.PATIENT
    if annotation == "OutboxStatus":
        return austa.OutboxStatus.PENDING
    if annotation == "str":
        return _text(name)
    # An input record: an empty one, which the core validates (its own fields, not the call's).
    return {}


def _method(db: austa.Database, scope: austa.Scope, target: str, group: str, method: str) -> Callable[..., Any]:
    owner: Any = scope if target == "scope" else db
    if group:
        owner = getattr(owner, group)
    if method == "create_many":
        return lambda: owner.create_many([{}])
    if method == "backend":
        return lambda: owner.backend
    return getattr(owner, method)  # type: ignore[no-any-return]


def _dispatch_error(error: austa.AustaError, args: Tuple[str, ...]) -> bool:
    """Whether a failure is the binding's (a name or argument the registry does not know, or one the
    method failed to pass) rather than the operation's own answer to sample data."""
    text = str(error)
    if error.field in ("operation", "arguments") or "not an argument of this call" in text:
        return True
    return error.field in args and "required" in text


def test_every_operation_runs_through_its_method(db: austa.Database, tmp_path: Path) -> None:
    org = db.organizations.create(name="Clínica Operações", organization_type=austa.OrganizationType.CLINIC)
    scope = db.scope(org.id, austa.Actor.platform(), purpose="operations test")
    # Rotating the master key last: the database keeps working with the old one until then.
    names = sorted(austa.OPERATIONS, key=lambda n: n == "rotate_master_key")
    outcomes: Dict[str, str] = {}
    broken: List[str] = []
    for name in names:
        target, group, method, args = austa.OPERATIONS[name]
        function = _method(db, scope, target, group, method)
        try:
            parameters = inspect.signature(function).parameters.values()
        except ValueError:
            parameters = []  # type: ignore[assignment]
        values = []
        keywords: Dict[str, Any] = {}
        for p in parameters:
            if p.default is not inspect.Parameter.empty or p.kind is p.VAR_KEYWORD:
                continue
            if p.kind is p.KEYWORD_ONLY:
                keywords[p.name] = _sample(p, tmp_path)
            else:
                values.append(_sample(p, tmp_path))
        if name == "rotate_master_key":
            keywords["key_file"] = tmp_path / "new.key"
        try:
            function(*values, **keywords)
            outcomes[name] = "ok"
        except austa.AustaError as error:
            outcomes[name] = type(error).__name__
            if _dispatch_error(error, args):
                broken.append(f"{name}: {error}")
    assert not broken, "\n".join(broken)
    assert set(outcomes) == set(austa.OPERATIONS)
    # The sample data is plausible enough that most operations succeed or answer NotFound.
    answered = sum(1 for o in outcomes.values() if o in ("ok", "NotFound"))
    assert answered >= len(outcomes) // 2, outcomes
