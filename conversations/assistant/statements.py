"""The message path's hot statements (the assistant turn's, and storing a message and its event), written
once per process from the models' metadata.

Why not the ORM here: on an offline turn, building these few queries through the ORM (the query tree, its
compilation, the select_related joins) cost more CPU than Postgres spent running them, on every turn. So
the statements a turn always runs are composed once, naming each column through its model field, and
their rows become model instances through `Model.from_db` after each field's own converters (JSON
decoding...), as the ORM's compiler would do. Anything rarer stays with the ORM.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def fields_of(model: type[Model], names: Iterable[str] | None = None) -> tuple[Field[Any, Any], ...]:
    """The concrete fields of `model` named (by field or attribute name: `agent` or `agent_id`), or all."""
    if names is None:
        return tuple(model._meta.concrete_fields)
    by_name = _by_name(model)
    return tuple(by_name[name] for name in names)


@functools.cache
def _by_name(model: type[Model]) -> dict[str, Field[Any, Any]]:
    return {name: field for field in model._meta.concrete_fields for name in (field.name, field.attname)}


def select_list(alias: str, fields: Sequence[Field[Any, Any]]) -> str:
    return ", ".join(f"{alias}.{quote(field.column)}" for field in fields)


@functools.cache
def _converters(model: type[Model], fields: tuple[Field[Any, Any], ...]) -> list[list[tuple[Any, Any]]]:
    """Each field's converters from database values, with the column expression they are called with."""
    table = model._meta.db_table
    converters = []
    for field in fields:
        col = field.get_col(table)
        found = connection.ops.get_db_converters(col) + field.get_db_converters(connection)  # type: ignore[attr-defined]
        converters.append([(convert, col) for convert in found])
    return converters


@functools.cache
def _model_order(model: type[Model], fields: tuple[Field[Any, Any], ...]) -> tuple[list[str], list[int]]:
    """`fields`' attribute names in the model's order (Model.from_db's) and where each is in `fields`."""
    ordered = [field for field in model._meta.concrete_fields if field in fields]
    return [field.attname for field in ordered], [fields.index(field) for field in ordered]


def instance(model: type[M], fields: tuple[Field[Any, Any], ...], values: Sequence[Any]) -> M:
    """`model` built from a row's `values` for `fields` (the others deferred, as with `only()`)."""
    converted = list(values)
    for i, field_converters in enumerate(_converters(model, fields)):
        for convert, col in field_converters:
            converted[i] = convert(converted[i], col, connection)
    attnames, positions = _model_order(model, fields)
    return model.from_db(connection.alias, attnames, [converted[i] for i in positions])


def instances(row: Sequence[Any], parts: Sequence[tuple[type[Model], tuple[Field[Any, Any], ...]]]) -> list[Any]:
    """One instance per (model, fields) of `parts`, read from consecutive columns of `row`."""
    built = []
    start = 0
    for model, fields in parts:
        built.append(instance(model, fields, row[start : start + len(fields)]))
        start += len(fields)
    return built


@functools.cache
def _update_sql(model: type[Model], names: tuple[str, ...], where: tuple[str, ...]) -> str:
    table = quote(model._meta.db_table)
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields_of(model, names))
    conditions = " AND ".join(f"{quote(field.column)} = %s" for field in fields_of(model, where))
    return f"UPDATE {table} SET {assignments} WHERE {conditions}"  # noqa: S608 (names from the model)


def update(model: type[Model], values: dict[str, Any], where: dict[str, Any]) -> int:
    """`UPDATE model SET values WHERE where` (each condition an equality); the rows changed."""
    names, conditions = tuple(values), tuple(where)
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields_of(model, names), values.values(), strict=True)
    ] + [
        field.get_db_prep_value(value, connection)
        for field, value in zip(fields_of(model, conditions), where.values(), strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(_update_sql(model, names, conditions), params)
        return cursor.rowcount


@functools.cache
def _insert_fields(model: type[Model]) -> tuple[Field[Any, Any], ...]:
    """What an INSERT of a new `model` row writes: every concrete field but a generated primary key."""
    return tuple(field for field in model._meta.concrete_fields if not field.db_returning)  # type: ignore[attr-defined]


@functools.cache
def _insert_sql(model: type[Model]) -> str:
    fields = _insert_fields(model)
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608 (names from the model)


def insert(obj: Model) -> None:
    """Store the new `obj` as `save()` would (defaults, `auto_now`), with no signals and nothing read back
    (a generated primary key stays unset on `obj`)."""
    params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in _insert_fields(type(obj))]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(type(obj)), params)


@functools.cache
def _returning(model: type[Model]) -> tuple[Field[Any, Any], ...]:
    """The fields the database fills in on INSERT (a generated primary key)."""
    return tuple(field for field in model._meta.concrete_fields if field.db_returning)  # type: ignore[attr-defined]


@functools.cache
def _create_sql(model: type[Model]) -> str:
    returning = _returning(model)
    if not returning:
        return _insert_sql(model)
    return f"{_insert_sql(model)} RETURNING {', '.join(quote(field.column) for field in returning)}"


def create(obj: M) -> M:
    """Store the new `obj` as `Model.objects.create` would (defaults, `auto_now`, a generated primary key
    read back), in one statement composed once per model. No `pre_save`/`post_save` signals: only for models
    that have no receivers for them (Message and Event on the message path)."""
    model = type(obj)
    params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in _insert_fields(model)]
    with connection.cursor() as cursor:
        cursor.execute(_create_sql(model), params)
        if returning := _returning(model):
            row = cursor.fetchone()
            for field, value in zip(returning, row, strict=True):
                setattr(obj, field.attname, value)
    obj._state.adding = False
    obj._state.db = connection.alias
    return obj
