"""Write skewless feature transforms in Python.

A transform is a WebAssembly component implementing the ``skewless:transform`` WIT world:
``describe()`` returns its signature and ``transform(batch)`` computes output columns from a
columnar, Arrow-shaped batch. ``skewless build`` turns a project whose entry module is
``app.py`` into such a component with componentize-py; this module is put on the module path
by that build (it needs the bindings componentize-py generates, so it does not import in a
plain interpreter).

Per row (like the Rust SDK's ``#[transform]``)::

    from dataclasses import dataclass
    from typing import Optional
    from skewless_guest import transform

    @dataclass
    class Order:
        amount: Optional[float]      # float64, nullable
        quantity: Optional[int]      # int64, nullable

    @dataclass
    class Features:
        unit_price: Optional[float]
        is_bulk: bool                # boolean, not nullable

    @transform(name="order-features", version="1.0.0")
    def order_features(order: Order) -> Features:
        ...

Columnar::

    from skewless_guest import columnar, Signature, Field, UTF8, INT32, BatchBuilder

    SIGNATURE = Signature("name-length", "1.0.0",
                          inputs=[Field("name", UTF8, nullable=True)],
                          outputs=[Field("name_length", INT32, nullable=True)])

    @columnar(SIGNATURE)
    def name_length(batch):
        names = batch.utf8("name")            # list of str or None
        lengths = [None if n is None else len(n) for n in names]
        return BatchBuilder(batch.num_rows).int32("name_length", lengths)

Types: ``bool`` (boolean), ``int`` (int64), ``float`` (float64), ``str`` (utf8), ``bytes``
(binary), and the markers ``Int32``, ``Float32``, ``Timestamp`` (int microseconds since the
epoch, UTC) and ``Vector[n]`` (a list of n floats). ``Optional[T]`` (or ``T | None``) makes a
column nullable: a null input arrives as ``None``, and returning ``None`` writes a null.

Errors: raise ``TransformError(message, column=None, row=None)`` to fail the whole batch; the
per-row API fills in the row. Any other exception escaping a transform also fails the batch,
with its type and message. Prefer ``None`` for a value that cannot be computed.

Either decorator defines ``WitWorld`` (the class componentize-py exports) in the module that
defines the transform, which must be ``app``; a project exports exactly one transform.
"""

import dataclasses
import sys
import types as _pytypes
import typing
from itertools import accumulate
from operator import attrgetter

from componentize_py_types import Err
from wit_world.imports import types as wit

__all__ = [
    "transform",
    "columnar",
    "Batch",
    "BatchBuilder",
    "Signature",
    "Field",
    "TransformError",
    "Int32",
    "Float32",
    "Timestamp",
    "Vector",
    "BOOLEAN",
    "INT32",
    "INT64",
    "FLOAT32",
    "FLOAT64",
    "UTF8",
    "BINARY",
    "TIMESTAMP",
    "float32_vector",
]

# Annotation markers for the column types Python's own types do not name.
Int32 = typing.NewType("Int32", int)
Float32 = typing.NewType("Float32", float)
Timestamp = typing.NewType("Timestamp", int)


class Vector:
    """``Vector[n]``: a float32-vector column of dimension ``n`` (a list of ``n`` floats)."""

    _cache = {}

    def __init__(self, dimension):
        self.dimension = dimension

    def __class_getitem__(cls, dimension):
        if not isinstance(dimension, int) or dimension <= 0:
            raise TypeError(f"Vector[n] needs a positive int dimension, not {dimension!r}")
        return cls._cache.setdefault(dimension, cls(dimension))

    def __repr__(self):
        return f"Vector[{self.dimension}]"


# Data types, as the WIT names them.
BOOLEAN = wit.DataType_Boolean()
INT32 = wit.DataType_Int32()
INT64 = wit.DataType_Int64()
FLOAT32 = wit.DataType_Float32()
FLOAT64 = wit.DataType_Float64()
UTF8 = wit.DataType_Utf8()
BINARY = wit.DataType_Binary()
TIMESTAMP = wit.DataType_Timestamp()


def float32_vector(dimension):
    """The data type of an embedding of ``dimension`` float32 values."""
    return wit.DataType_Float32Vector(dimension)


def Field(name, data_type, nullable=False):
    """One input or output column."""
    return wit.Field(name, data_type, nullable)


def Signature(name, version, description="", inputs=(), outputs=()):
    """What a transform is and what it reads and writes."""
    return wit.Signature(name, version, description, list(inputs), list(outputs))


class TransformError(Exception):
    """A batch-level failure: the host fails the call and reports the message, column and row."""

    def __init__(self, message, column=None, row=None):
        super().__init__(message)
        self.message = message
        self.column = column
        self.row = row


def _type_name(data_type):
    if isinstance(data_type, wit.DataType_Float32Vector):
        return f"float32-vector({data_type.value})"
    return {
        wit.DataType_Boolean: "boolean",
        wit.DataType_Int32: "int32",
        wit.DataType_Int64: "int64",
        wit.DataType_Float32: "float32",
        wit.DataType_Float64: "float64",
        wit.DataType_Utf8: "utf8",
        wit.DataType_Binary: "binary",
        wit.DataType_Timestamp: "timestamp",
    }[type(data_type)]


# ---------------------------------------------------------------------------------------------
# Bitmaps. Arrow bitmaps are least significant bit first; one big int turns a whole bitmap into
# a string of '0'/'1' (or back) at C speed instead of a Python loop over bits.


def _bits(bitmap, n):
    """The first ``n`` bits of ``bitmap`` as a string of '1' (set) and '0'."""
    if n == 0:
        return ""
    return format(int.from_bytes(bitmap, "little"), f"0{len(bitmap) * 8}b")[::-1][:n]


def _bitmap(flags):
    """Bit-packs an iterable of truthy/falsy values, least significant bit first."""
    text = "".join(["1" if f else "0" for f in flags])
    if not text:
        return b""
    return int(text[::-1], 2).to_bytes((len(text) + 7) // 8, "little")


# ---------------------------------------------------------------------------------------------
# Reading a batch.

_VALUES = {
    "boolean": wit.ColumnValues_Boolean,
    "int32": wit.ColumnValues_Int32,
    "int64": wit.ColumnValues_Int64,
    "float32": wit.ColumnValues_Float32,
    "float64": wit.ColumnValues_Float64,
    "utf8": wit.ColumnValues_Utf8,
    "binary": wit.ColumnValues_Binary,
    "timestamp": wit.ColumnValues_Timestamp,
    "float32-vector": wit.ColumnValues_Float32Vector,
}
_VALUE_NAMES = {cls: name for name, cls in _VALUES.items()}


class Batch:
    """A read-only view of an input batch. Each accessor returns one Python list per column,
    one value per row, ``None`` for a null row."""

    def __init__(self, batch):
        self.num_rows = batch.num_rows
        self._columns = {c.name: c for c in batch.columns}

    @property
    def column_names(self):
        return list(self._columns)

    def _column(self, name, kind):
        column = self._columns.get(name)
        if column is None:
            raise TransformError(
                f"the input has no column `{name}` (it has: {', '.join(self._columns) or 'none'})",
                column=name,
            )
        if not isinstance(column.values, _VALUES[kind]):
            found = _VALUE_NAMES.get(type(column.values), "unknown")
            raise TransformError(
                f"column `{name}` holds {found} values, expected {kind}", column=name
            )
        return column

    def _with_nulls(self, column, values):
        if column.validity is None:
            return values
        bits = _bits(column.validity, self.num_rows)
        return [v if b == "1" else None for v, b in zip(values, bits)]

    def _primitive(self, name, kind):
        column = self._column(name, kind)
        return self._with_nulls(column, column.values.value)

    def boolean(self, name):
        column = self._column(name, "boolean")
        bits = _bits(column.values.value, self.num_rows)
        return self._with_nulls(column, [b == "1" for b in bits])

    def int32(self, name):
        return self._primitive(name, "int32")

    def int64(self, name):
        return self._primitive(name, "int64")

    def float32(self, name):
        return self._primitive(name, "float32")

    def float64(self, name):
        return self._primitive(name, "float64")

    def timestamp(self, name):
        """Microseconds since the Unix epoch, UTC."""
        return self._primitive(name, "timestamp")

    def _var_len(self, name, kind):
        column = self._column(name, kind)
        offsets, data = column.values.value.offsets, column.values.value.data
        values = [data[offsets[i] : offsets[i + 1]] for i in range(self.num_rows)]
        return column, values

    def binary(self, name):
        column, values = self._var_len(name, "binary")
        return self._with_nulls(column, values)

    def utf8(self, name):
        column, values = self._var_len(name, "utf8")
        return self._with_nulls(column, [v.decode() for v in values])

    def vector(self, name, dimension):
        """Each row's embedding as a list of ``dimension`` floats."""
        column = self._column(name, "float32-vector")
        flat = column.values.value
        rows = [flat[i * dimension : (i + 1) * dimension] for i in range(self.num_rows)]
        return self._with_nulls(column, rows)


# ---------------------------------------------------------------------------------------------
# Building a batch.

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


class BatchBuilder:
    """Collects output columns, each given as a list with one value (or ``None``) per row."""

    def __init__(self, num_rows):
        self.num_rows = num_rows
        self._columns = []

    def _check_length(self, name, values):
        if len(values) != self.num_rows:
            raise TransformError(
                f"output column `{name}` has {len(values)} values, expected {self.num_rows} "
                "(one per input row)",
                column=name,
            )

    def _add(self, name, values, wit_values, has_nulls):
        validity = _bitmap(v is not None for v in values) if has_nulls else None
        self._columns.append(wit.Column(name, wit_values, validity))
        return self

    def _numbers(self, name, values, kind, zero, allowed):
        self._check_length(name, values)
        has_nulls = None in values
        dense = [zero if v is None else v for v in values] if has_nulls else list(values)
        # Type checks on the whole column at C speed (`map(type, ...)`); a Python loop only to
        # name the first bad row.
        types = set(map(type, dense))
        if type(zero) is float and int in types:
            # An int (say a literal `0`) in a float column is converted, as Python would in
            # arithmetic; the conversion rounds to nearest, like every language's.
            dense = [float(v) if type(v) is int else v for v in dense]
            types = set(map(type, dense))
        if not types <= {allowed}:
            i = next(i for i, v in enumerate(dense) if type(v) is not allowed)
            raise TransformError(
                f"output column `{name}` expects {kind} values, row {i} holds {dense[i]!r}",
                column=name,
                row=i,
            )
        if kind in _INT_RANGES and dense:
            low, high = _INT_RANGES[kind]
            if min(dense) < low or max(dense) > high:
                i = next(i for i, v in enumerate(dense) if not low <= v <= high)
                raise TransformError(
                    f"output column `{name}` is {kind}, row {i} holds {dense[i]}, out of range",
                    column=name,
                    row=i,
                )
        return self._add(name, values, _VALUES[kind](dense), has_nulls)

    def boolean(self, name, values):
        self._check_length(name, values)
        for i, v in enumerate(values):
            if v is not None and type(v) is not bool:
                raise TransformError(
                    f"output column `{name}` expects boolean values, row {i} holds {v!r}",
                    column=name,
                    row=i,
                )
        return self._add(
            name, values, wit.ColumnValues_Boolean(_bitmap(values)), None in values
        )

    def int32(self, name, values):
        return self._numbers(name, values, "int32", 0, int)

    def int64(self, name, values):
        return self._numbers(name, values, "int64", 0, int)

    def timestamp(self, name, values):
        """Microseconds since the Unix epoch, UTC."""
        return self._numbers(name, values, "timestamp", 0, int)

    def float32(self, name, values):
        return self._numbers(name, values, "float32", 0.0, float)

    def float64(self, name, values):
        return self._numbers(name, values, "float64", 0.0, float)

    def _var_len(self, name, values, kind, encode):
        self._check_length(name, values)
        has_nulls = None in values
        try:
            encoded = [b"" if v is None else encode(v) for v in values]
        except (AttributeError, TypeError) as e:
            i = next(i for i, v in enumerate(values) if not _is_var_len(v, kind))
            raise TransformError(
                f"output column `{name}` expects {kind} values, row {i} holds {values[i]!r}",
                column=name,
                row=i,
            ) from e
        offsets = [0, *accumulate(len(b) for b in encoded)]
        var_len = wit.VarLen(offsets, b"".join(encoded))
        return self._add(name, values, _VALUES[kind](var_len), has_nulls)

    def utf8(self, name, values):
        return self._var_len(name, values, "utf8", str.encode)

    def binary(self, name, values):
        return self._var_len(name, values, "binary", bytes)

    def vector(self, name, dimension, values):
        """Each row's embedding as a sequence of ``dimension`` floats (or ``None``)."""
        self._check_length(name, values)
        flat = []
        zeros = [0.0] * dimension
        for i, v in enumerate(values):
            if v is not None and len(v) != dimension:
                raise TransformError(
                    f"output column `{name}` holds vectors of {dimension} floats, row {i} has {len(v)}",
                    column=name,
                    row=i,
                )
            flat.extend(zeros if v is None else v)
        return self._add(
            name, values, wit.ColumnValues_Float32Vector(flat), None in values
        )

    def finish(self):
        return wit.Batch(self.num_rows, self._columns)


def _is_var_len(v, kind):
    return v is None or isinstance(v, str if kind == "utf8" else (bytes, bytearray))


# ---------------------------------------------------------------------------------------------
# Rows: dataclass fields to columns.


def _column_type(annotation, owner, field_name):
    """(data type, nullable, reader, writer) of a dataclass field's annotation."""
    nullable = False
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is _pytypes.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1 or len(typing.get_args(annotation)) != 2:
            raise TypeError(_unsupported(owner, field_name, annotation))
        nullable, annotation = True, args[0]
    if isinstance(annotation, Vector):
        d = annotation.dimension
        return (
            float32_vector(d),
            nullable,
            lambda batch, name: batch.vector(name, d),
            lambda builder, name, values: builder.vector(name, d, values),
        )
    simple = {
        bool: (BOOLEAN, "boolean"),
        int: (INT64, "int64"),
        float: (FLOAT64, "float64"),
        str: (UTF8, "utf8"),
        bytes: (BINARY, "binary"),
        Int32: (INT32, "int32"),
        Float32: (FLOAT32, "float32"),
        Timestamp: (TIMESTAMP, "timestamp"),
    }
    if annotation not in simple:
        raise TypeError(_unsupported(owner, field_name, annotation))
    data_type, method = simple[annotation]
    return (
        data_type,
        nullable,
        lambda batch, name: getattr(batch, method)(name),
        lambda builder, name, values: getattr(builder, method)(name, values),
    )


def _unsupported(owner, field_name, annotation):
    return (
        f"unsupported type {annotation!r} for field `{field_name}` of {owner.__name__}: a row "
        "field is one of bool, int (int64), float (float64), str, bytes, Int32, Float32, "
        "Timestamp, Vector[n], or Optional[...] of one of these for a nullable column"
    )


def _row_columns(cls, role):
    if not dataclasses.is_dataclass(cls):
        raise TypeError(
            f"the {role} row must be a @dataclass whose fields are its columns, not {cls!r}"
        )
    hints = typing.get_type_hints(cls)
    return [
        (f.name, *_column_type(hints[f.name], cls, f.name))
        for f in dataclasses.fields(cls)
    ]


def _export(signature, run):
    """Defines ``WitWorld`` in the caller's ``app`` module: the class componentize-py exports."""

    class WitWorld:
        def describe(self):
            return signature

        def transform(self, input):
            try:
                return run(input)
            except TransformError as e:
                raise Err(wit.TransformError(e.message, e.column, e.row))
            except Err:
                raise
            except Exception as e:  # noqa: BLE001 - any bug fails the batch, with its type
                raise Err(wit.TransformError(f"{type(e).__name__}: {e}", None, None))

    return WitWorld


def _install(fn, world):
    module = sys.modules[fn.__module__]
    if getattr(module, "WitWorld", None) is not None:
        raise TypeError(
            f"module {fn.__module__} already exports a transform; a project exports exactly one"
        )
    module.WitWorld = world


def transform(name, version, description=None):
    """Per-row transform: ``fn(row: Input) -> Output`` over two dataclasses.

    The signature comes from the dataclasses' fields (name, type, ``Optional`` = nullable)
    and the description from ``description`` or the first paragraph of the docstring.
    """

    def decorate(fn):
        hints = typing.get_type_hints(fn)
        params = [p for p in fn.__code__.co_varnames[: fn.__code__.co_argcount]]
        if len(params) != 1:
            raise TypeError(
                f"a transform takes exactly one argument, the input row; "
                f"{fn.__name__} takes {len(params)}"
            )
        if params[0] not in hints or "return" not in hints:
            raise TypeError(
                f"annotate {fn.__name__}'s argument and return type with the input and output "
                "dataclasses: def f(row: Input) -> Output"
            )
        in_cls, out_cls = hints[params[0]], hints["return"]
        inputs, outputs = _row_columns(in_cls, "input"), _row_columns(out_cls, "output")
        # The docstring's first paragraph, on one line (as the Rust SDK takes the doc comment's).
        doc = " ".join(
            line.strip() for line in (fn.__doc__ or "").strip().split("\n\n")[0].splitlines()
        )
        signature = Signature(
            name,
            version,
            description if description is not None else doc,
            [Field(n, t, nullable) for n, t, nullable, _, _ in inputs],
            [Field(n, t, nullable) for n, t, nullable, _, _ in outputs],
        )

        def run(raw):
            batch = Batch(raw)
            n = batch.num_rows
            columns = []
            for col_name, _, nullable, read, _ in inputs:
                values = read(batch, col_name)
                if not nullable and None in values:
                    row = values.index(None)
                    raise TransformError(
                        f"input column `{col_name}` has a null in row {row}, but "
                        f"{in_cls.__name__}.{col_name} is not Optional",
                        column=col_name,
                        row=row,
                    )
                columns.append(values)
            results = []
            row = 0
            try:
                for row, values in enumerate(zip(*columns) if columns else [()] * n):
                    results.append(fn(in_cls(*values)))
            except TransformError as e:
                if e.row is None:
                    e.row = row
                raise
            except Exception as e:  # noqa: BLE001 - a bug in one row fails the batch
                raise TransformError(f"{type(e).__name__}: {e}", row=row) from e
            bad = set(map(type, results)) - {out_cls}
            for i, result in enumerate(results if bad else ()):
                if type(result) is not out_cls:
                    raise TransformError(
                        f"{fn.__name__} returned {type(result).__name__} for row {i}, "
                        f"expected {out_cls.__name__}",
                        row=i,
                    )
            builder = BatchBuilder(n)
            for col_name, _, nullable, _, write in outputs:
                values = list(map(attrgetter(col_name), results))
                if not nullable and None in values:
                    i = values.index(None)
                    raise TransformError(
                        f"{out_cls.__name__}.{col_name} is None in row {i}, but the field is "
                        "not Optional",
                        column=col_name,
                        row=i,
                    )
                write(builder, col_name, values)
            return builder.finish()

        fn.signature = signature
        _install(fn, _export(signature, run))
        return fn

    return decorate


def columnar(signature):
    """Columnar transform: ``fn(batch: Batch) -> BatchBuilder`` (or a finished WIT batch)."""

    def decorate(fn):
        def run(raw):
            result = fn(Batch(raw))
            return result.finish() if isinstance(result, BatchBuilder) else result

        fn.signature = signature
        _install(fn, _export(signature, run))
        return fn

    return decorate
