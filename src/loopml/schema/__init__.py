"""Schemas: the data contract that training, serving and monitoring share.

A :class:`Schema` lists a table's columns with their logical type (:class:`ColumnType`),
nullability, range, allowed categories and uniqueness, plus the target column and a unique key.
Infer one from data with :func:`infer_schema`, save it as YAML and edit it by hand
(:meth:`Schema.save`, :meth:`Schema.load`), check data against it with :func:`validate` (or
:class:`Validator`, chunk by chunk), compare two with :func:`diff_schemas`, and make model inputs
fit it with :func:`conform`.
"""

from __future__ import annotations

from loopml.schema.conform import conform as conform
from loopml.schema.diff import ColumnChange as ColumnChange
from loopml.schema.diff import SchemaDiff as SchemaDiff
from loopml.schema.diff import diff_schemas as diff_schemas
from loopml.schema.infer import infer_schema as infer_schema
from loopml.schema.model import ColumnSchema as ColumnSchema
from loopml.schema.model import ColumnType as ColumnType
from loopml.schema.model import Schema as Schema
from loopml.schema.model import Severity as Severity
from loopml.schema.report import ValidationReport as ValidationReport
from loopml.schema.report import Violation as Violation
from loopml.schema.validate import Validator as Validator
from loopml.schema.validate import validate as validate

__all__ = [
    "ColumnChange",
    "ColumnSchema",
    "ColumnType",
    "Schema",
    "SchemaDiff",
    "Severity",
    "ValidationReport",
    "Validator",
    "Violation",
    "conform",
    "diff_schemas",
    "infer_schema",
    "validate",
]
