"""Write skewless feature transforms in Python.

A transform is a WebAssembly component implementing the ``skewless:transform`` WIT world:
``describe()`` returns its signature and ``transform(batch)`` computes output columns from a
columnar, Arrow-shaped batch. Python builds against contract version 0.2.0, which carries every
buffer as bytes: componentize-py hands each over as one ``bytes`` object (a list of numbers
would cross one Python object at a time), and this module converts it at C speed.
``skewless build`` turns a project whose entry module is ``app.py`` into such a component with
componentize-py; this module is put on the module path by that build (it needs the bindings
componentize-py generates, so it does not import in a plain interpreter).

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

A reader takes ``null=`` for the value of null rows (``batch.float64("x", null=math.nan)``:
float math then needs no ``is None`` test); ``batch.valid(name)`` tells which rows hold a
value. Which API to use: per row reads best and costs little more online (a few rows per
call: the call's fixed cost dominates); columnar is ~2.4x faster on large batches, where the
per-row API's object and call per row dominate. ``docs/writing-transforms/python.md`` has the
figures.

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
from array import array
from itertools import accumulate, chain, islice

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
# Bitmaps. Arrow bitmaps are least significant bit first. A bitmap becomes one byte (0 or 1) per
# row, and back, through one big int and a byte translation: no Python loop over bits.
#
# The loops over values below are list comprehensions with one test each: on CPython's
# specializing interpreter (3.13+, the one componentize-py bundles) they beat `map` over C
# functions (natively, replacing None by a comprehension costs ~13 ns a value, by
# `map(dict.get, ...)` ~32 ns).

_TO_FLAGS = bytes.maketrans(b"01", b"\x00\x01")
_TO_DIGITS = bytes.maketrans(b"\x00\x01", b"01")
_NONE = type(None)


def _flags(bitmap, n, what):
    """The first ``n`` bits of ``bitmap`` as bytes holding 0 or 1, one per row."""
    if len(bitmap) * 8 < n:
        raise TransformError(
            f"{what} holds {len(bitmap)} bytes, fewer than the {(n + 7) // 8} that {n} rows need"
        )
    if n == 0:
        return b""
    digits = format(int.from_bytes(bitmap, "little"), f"0{len(bitmap) * 8}b").encode()
    return digits[::-1][:n].translate(_TO_FLAGS)


def _pack(flags):
    """Bit-packs bytes holding 0 or 1 per row, least significant bit first."""
    if not flags:
        return b""
    return int(flags.translate(_TO_DIGITS)[::-1], 2).to_bytes((len(flags) + 7) // 8, "little")


def _without_nulls(values, fill):
    """``(dense, flags)``: a copy of ``values`` with ``fill`` for each ``None``, and which rows
    hold a value (0/1 bytes per row).

    The ``None`` rows are found at C speed (``list.index``), so Python runs once per null row
    only. For columns whose types were checked: ``index`` tests with ``==``, which no value of
    a column's own types makes true of ``None``.
    """
    dense = list(values)
    flags = bytearray(b"\x01") * len(dense)
    index = dense.index
    i = -1
    try:
        while True:
            i = index(None, i + 1)
            dense[i] = fill
            flags[i] = 0
    except ValueError:
        return dense, flags


# ---------------------------------------------------------------------------------------------
# Fixed-width values. The 0.2.0 contract carries every buffer as little-endian bytes (which
# componentize-py hands over as one `bytes` object, where a list of numbers would cross one
# value at a time); `array` and `memoryview` convert between those bytes and lists at C speed.
# WebAssembly is little-endian, so the native layout is the contract's.

# `array` type codes of the fixed-width kinds (on wasm32, C's `int` is 32 bits, `long long` 64).
_TYPECODES = {"int32": "i", "int64": "q", "timestamp": "q", "float32": "f", "float64": "d"}


def _unpack(data, kind, what, column):
    """The values of a fixed-width buffer as a new list."""
    code = _TYPECODES[kind]
    width = array(code).itemsize
    if len(data) % width:
        raise TransformError(
            f"{what} holds {len(data)} bytes, not a whole number of {width}-byte {kind} values",
            column=column,
        )
    return memoryview(data).cast(code).tolist()


def _packed(values, kind):
    """A list of numbers (no ``None``) as the little-endian bytes of ``kind``."""
    return array(_TYPECODES[kind], values).tobytes()


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
    """A read-only view of an input batch. Each accessor returns a new Python list per column,
    one value per row; a null row holds ``null``: ``None`` unless given (``null=math.nan``
    lets float math run over a whole column with no test for ``None``).

    An accessor decodes the whole column at once: numbers from the column's bytes with one
    C-speed conversion, validity once per column, strings with one decode when they are ASCII;
    Python runs per value only to put ``null`` in the null rows (once per null row).
    """

    def __init__(self, batch):
        self.num_rows = batch.num_rows
        self._columns = {c.name: c for c in batch.columns}

    @property
    def column_names(self):
        return list(self._columns)

    def _column(self, name, kind=None):
        column = self._columns.get(name)
        if column is None:
            raise TransformError(
                f"the input has no column `{name}` (it has: {', '.join(self._columns) or 'none'})",
                column=name,
            )
        if kind is not None and not isinstance(column.values, _VALUES[kind]):
            found = _VALUE_NAMES.get(type(column.values), "unknown")
            raise TransformError(
                f"column `{name}` holds {found} values, expected {kind}", column=name
            )
        return column

    def _flags(self, column):
        """The column's validity as 0/1 bytes, or ``None`` when no row is null."""
        if column.validity is None:
            return None
        what = f"the validity of column `{column.name}`"
        flags = _flags(column.validity, self.num_rows, what)
        return flags if 0 in flags else None

    def valid(self, name):
        """Which rows of column ``name`` hold a value: a list of bools, one per row."""
        flags = self._flags(self._column(name))
        return [True] * self.num_rows if flags is None else [f == 1 for f in flags]

    def _with_nulls(self, column, values, null):
        """``values`` (a list of the caller's own) with ``null`` in the column's null rows."""
        flags = self._flags(column)
        if flags is None:
            return values
        # The null rows are found at C speed (`find`); Python runs once per null row only.
        find = flags.find
        i = find(0)
        while i >= 0:
            values[i] = null
            i = find(0, i + 1)
        return values

    def _primitive(self, name, kind, null):
        column = self._column(name, kind)
        values = _unpack(column.values.value, kind, f"column `{name}`", name)
        if len(values) != self.num_rows:
            raise TransformError(
                f"column `{name}` holds {len(values)} values for {self.num_rows} rows",
                column=name,
            )
        return self._with_nulls(column, values, null)

    def boolean(self, name, null=None):
        column = self._column(name, "boolean")
        flags = _flags(column.values.value, self.num_rows, f"boolean column `{name}`")
        return self._with_nulls(column, [f == 1 for f in flags], null)

    def int32(self, name, null=None):
        return self._primitive(name, "int32", null)

    def int64(self, name, null=None):
        return self._primitive(name, "int64", null)

    def float32(self, name, null=None):
        return self._primitive(name, "float32", null)

    def float64(self, name, null=None):
        return self._primitive(name, "float64", null)

    def timestamp(self, name, null=None):
        """Microseconds since the Unix epoch, UTC."""
        return self._primitive(name, "timestamp", null)

    def _slices(self, column, data):
        """Row ``i`` of a var-len column as ``data[offsets[i]:offsets[i + 1]]``."""
        n = self.num_rows
        what = f"the offsets of column `{column.name}`"
        offsets = _unpack(column.values.value.offsets, "int32", what, column.name)
        if len(offsets) != n + 1:
            raise TransformError(
                f"column `{column.name}` has {len(offsets)} offsets for {n} rows, "
                f"expected {n + 1}",
                column=column.name,
            )
        return [data[a:b] for a, b in zip(offsets, islice(offsets, 1, None))]

    def binary(self, name, null=None):
        column = self._column(name, "binary")
        values = self._slices(column, column.values.value.data)
        return self._with_nulls(column, values, null)

    def utf8(self, name, null=None):
        column = self._column(name, "utf8")
        data = column.values.value.data
        try:
            if data.isascii():
                # One decode for the column: byte offsets are character offsets.
                values = self._slices(column, data.decode("ascii"))
            else:
                values = [b.decode() for b in self._slices(column, data)]
        except UnicodeDecodeError as e:
            raise TransformError(f"column `{name}` holds invalid UTF-8: {e}", column=name) from e
        return self._with_nulls(column, values, null)

    def vector(self, name, dimension, null=None):
        """Each row's embedding as a list of ``dimension`` floats."""
        column = self._column(name, "float32-vector")
        flat = _unpack(column.values.value, "float32", f"column `{name}`", name)
        n = self.num_rows
        if len(flat) != n * dimension:
            raise TransformError(
                f"column `{name}` holds {len(flat)} floats, not {n} rows of {dimension}",
                column=name,
            )
        rows = [flat[i : i + dimension] for i in range(0, n * dimension, dimension)]
        return self._with_nulls(column, rows, null)


# ---------------------------------------------------------------------------------------------
# Building a batch.

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


class BatchBuilder:
    """Collects output columns, each given as a list with one value (or ``None``) per row.

    Each column is checked whole (the set of its value types, its minimum and maximum); a
    loop over rows runs only to name the first bad row of a column that failed a check.
    """

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

    def _add(self, name, wit_values, flags):
        """Appends a column; ``flags`` (0/1 bytes per row) marks its nulls, ``None`` if none."""
        validity = None if flags is None else _pack(flags)
        self._columns.append(wit.Column(name, wit_values, validity))
        return self

    def _bad_row(self, name, values, kind, ok):
        """The error naming the first row whose value ``ok`` refuses."""
        i = next(i for i, v in enumerate(values) if not ok(v))
        return TransformError(
            f"output column `{name}` expects {kind} values, row {i} holds {values[i]!r}",
            column=name,
            row=i,
        )

    def _numbers(self, name, values, kind, zero, allowed):
        self._check_length(name, values)
        types = set(map(type, values))
        has_nulls = _NONE in types
        types.discard(_NONE)
        if allowed is float and int in types and types <= {int, float}:
            # An int (say a literal `0`) in a float column is converted, as Python would in
            # arithmetic; the conversion rounds to nearest, like every language's.
            try:
                values = [v if v is None else float(v) for v in values]
            except OverflowError:
                i = next(i for i, v in enumerate(values) if _too_large_for_float(v))
                raise TransformError(
                    f"output column `{name}` is {kind}, row {i} holds an int too large for "
                    "a float",
                    column=name,
                    row=i,
                ) from None
            types = {float}
        if not types <= {allowed}:
            raise self._bad_row(name, values, kind, lambda v: v is None or type(v) is allowed)
        dense, flags = _without_nulls(values, zero) if has_nulls else (values, None)
        if kind in _INT_RANGES and dense:
            low, high = _INT_RANGES[kind]
            if min(dense) < low or max(dense) > high:
                i = next(i for i, v in enumerate(dense) if not low <= v <= high)
                raise TransformError(
                    f"output column `{name}` is {kind}, row {i} holds {dense[i]}, out of range",
                    column=name,
                    row=i,
                )
        return self._add(name, _VALUES[kind](_packed(dense, kind)), flags)

    def boolean(self, name, values):
        self._check_length(name, values)
        types = set(map(type, values))
        if not types <= {bool, _NONE}:
            raise self._bad_row(name, values, "boolean", lambda v: v is None or type(v) is bool)
        dense, flags = _without_nulls(values, False) if _NONE in types else (values, None)
        # bools are ints: `bytes` makes the 0/1 bytes per row at C speed.
        return self._add(name, wit.ColumnValues_Boolean(_pack(bytes(dense))), flags)

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

    def _var_len(self, name, values, kind):
        self._check_length(name, values)
        allowed = str if kind == "utf8" else (bytes, bytearray)
        types = set(map(type, values))
        if not all(t is _NONE or issubclass(t, allowed) for t in types):
            raise self._bad_row(name, values, kind, lambda v: _is_var_len(v, kind))
        empty = "" if kind == "utf8" else b""
        dense, flags = _without_nulls(values, empty) if _NONE in types else (values, None)
        if kind == "utf8":
            joined = "".join(dense)
            if joined.isascii():
                # One encode for the column: lengths in characters are lengths in bytes.
                data, lengths = joined.encode("ascii"), map(len, dense)
            else:
                encoded = [v.encode() for v in dense]
                data, lengths = b"".join(encoded), map(len, encoded)
        else:
            data, lengths = b"".join(dense), map(len, dense)
        if len(data) > 2**31 - 1:
            raise TransformError(
                f"output column `{name}` holds {len(data)} bytes, more than 32-bit offsets "
                "address",
                column=name,
            )
        offsets = _packed([0, *accumulate(lengths)], "int32")
        return self._add(name, _VALUES[kind](wit.VarLen(offsets, data)), flags)

    def utf8(self, name, values):
        return self._var_len(name, values, "utf8")

    def binary(self, name, values):
        return self._var_len(name, values, "binary")

    def vector(self, name, dimension, values):
        """Each row's embedding as a sequence of ``dimension`` floats (or ``None``)."""
        self._check_length(name, values)
        # Rows are sequences of any type, so nulls are found by identity, not by `index`.
        flags = bytes([v is not None for v in values]) if None in values else None
        zeros = [0.0] * dimension
        dense = values if flags is None else [zeros if v is None else v for v in values]
        try:
            lengths = set(map(len, dense))
        except TypeError:
            lengths = None
        if lengths is None or not lengths <= {dimension}:
            i = next(
                i
                for i, v in enumerate(dense)
                if not hasattr(v, "__len__") or len(v) != dimension
            )
            have = len(values[i]) if hasattr(values[i], "__len__") else repr(values[i])
            raise TransformError(
                f"output column `{name}` holds vectors of {dimension} floats, row {i} has {have}",
                column=name,
                row=i,
            )
        flat = list(chain.from_iterable(dense))
        types = set(map(type, flat))
        if not types <= {float}:
            if not types <= {float, int}:
                bad = next(i for i, v in enumerate(flat) if type(v) not in (float, int))
                raise TransformError(
                    f"output column `{name}` holds vectors of floats, row {bad // dimension} "
                    f"holds {flat[bad]!r}",
                    column=name,
                    row=bad // dimension,
                )
            flat = [float(v) for v in flat]
        return self._add(name, wit.ColumnValues_Float32Vector(_packed(flat, "float32")), flags)

    def finish(self):
        return wit.Batch(self.num_rows, self._columns)


def _too_large_for_float(v):
    try:
        float(v)
    except OverflowError:
        return True
    return False


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


def _plain_dataclass(cls):
    """Whether ``cls`` is a dataclass whose ``__init__`` is the generated one (no
    ``__post_init__``, not frozen): one whose instances can be made by setting each field."""
    params = getattr(cls, "__dataclass_params__", None)
    init = cls.__dict__.get("__init__")
    return (
        params is not None
        and params.init
        and not params.frozen
        # dataclasses compiles the __init__ it generates from a string.
        and getattr(getattr(init, "__code__", None), "co_filename", None) == "<string>"
        and not hasattr(cls, "__post_init__")
    )


def _compile(source, name, namespace):
    exec(compile(source, f"<skewless_guest {name}>", "exec"), namespace)
    return namespace[name]


def _row_loop(in_cls, in_names):
    """``loop(fn, columns, n, results)``: appends ``fn(row)`` of each row to ``results`` (so
    that on an exception, ``len(results)`` is the failing row).

    The loop is compiled for the input class, as dataclasses compiles ``__init__``: a row of a
    plain dataclass is made by ``object.__new__`` and one attribute store per field, inline
    (what its ``__init__`` does, without the call); any other class is called per row.
    """
    values = [f"v{i}" for i in range(len(in_names))]
    if not in_names:
        head, make = "for _ in range(n):", "cls()"
    else:
        head = f"for {', '.join(values)}, in zip(*columns):"
        make = f"cls({', '.join(values)})"
    if _plain_dataclass(in_cls) and in_names:
        body = ["row = new(cls)"]
        body += [f"row.{name} = {v}" for name, v in zip(in_names, values)]
        body += ["append(fn(row))"]
    else:
        body = [f"append(fn({make}))"]
    source = "\n".join(
        [
            "def loop(fn, columns, n, results):",
            "    new = object.__new__",
            "    append = results.append",
            f"    {head}",
            *(f"        {line}" for line in body),
        ]
    )
    return _compile(source, "loop", {"cls": in_cls})


def _out_columns(out_names):
    """``columns(results)``: one list per output field, in order, each a comprehension over
    the results reading one attribute."""
    lists = "".join(f"[r.{name} for r in results], " for name in out_names)
    return _compile(f"def columns(results):\n    return ({lists})", "columns", {})


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
        loop = _row_loop(in_cls, [name for name, *_ in inputs])
        out_columns = _out_columns([name for name, *_ in outputs])
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
            try:
                loop(fn, columns, n, results)
            except TransformError as e:
                if e.row is None:
                    e.row = len(results)
                raise
            except Exception as e:  # noqa: BLE001 - a bug in one row fails the batch
                raise TransformError(f"{type(e).__name__}: {e}", row=len(results)) from e
            bad = set(map(type, results)) - {out_cls}
            for i, result in enumerate(results if bad else ()):
                if type(result) is not out_cls:
                    raise TransformError(
                        f"{fn.__name__} returned {type(result).__name__} for row {i}, "
                        f"expected {out_cls.__name__}",
                        row=i,
                    )
            builder = BatchBuilder(n)
            for (col_name, _, nullable, _, write), values in zip(outputs, out_columns(results)):
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
    """Columnar transform: ``fn(batch: Batch) -> BatchBuilder`` (or a finished WIT batch, in
    the 0.2.0 layout: fixed-width values and offsets as little-endian bytes)."""

    def decorate(fn):
        def run(raw):
            result = fn(Batch(raw))
            return result.finish() if isinstance(result, BatchBuilder) else result

        fn.signature = signature
        _install(fn, _export(signature, run))
        return fn

    return decorate
