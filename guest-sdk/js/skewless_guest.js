// Write skewless feature transforms in JavaScript.
//
// A transform is a WebAssembly component implementing the `skewless:transform` WIT world:
// `describe()` returns its signature and `transform(batch)` computes output columns from a
// columnar, Arrow-shaped batch. `skewless build` turns a project whose entry module is `app.js`
// into such a component with componentize-js; it stages this file beside `app.js`, so the
// entry module imports it as "./skewless_guest.js".
//
// Per row (like the Rust SDK's `#[transform]`): declare the columns with type strings and
// write a function from one row object to one output object.
//
//     import { rowTransform } from "./skewless_guest.js";
//
//     export const { describe, transform } = rowTransform({
//       name: "order-features",
//       version: "1.0.0",
//       inputs: { amount: "float64?", quantity: "int64?" },
//       outputs: { unit_price: "float64?", is_bulk: "boolean" },
//     }, (order) => ({
//       unit_price: order.quantity > 0n ? order.amount / Number(order.quantity) : null,
//       is_bulk: order.quantity !== null && order.quantity >= 10n,
//     }));
//
// Columnar: `columnarTransform(signature, (batch) => builder)` with `Batch` accessors (one
// array per column, `null` for a null row) and a `BatchBuilder`.
//
// Type strings: "boolean", "int32", "int64", "float32", "float64", "utf8", "binary",
// "timestamp" (microseconds since the epoch, UTC), "float32-vector(N)"; a trailing "?" makes
// the column nullable. Values: booleans, Numbers (int32, float32, float64), BigInts (int64 and
// timestamp: a Number cannot hold every 64-bit integer), strings, Uint8Arrays (binary),
// arrays of N Numbers (vectors); `null` for a null.
//
// Errors: throw `new TransformError(message, { column, row })` to fail the whole batch; the
// per-row API fills in the row. Any other exception escaping a transform fails the batch too,
// with its name and message. Prefer `null` for a value that cannot be computed.

export class TransformError extends Error {
  constructor(message, { column = null, row = null } = {}) {
    super(message);
    this.name = "TransformError";
    this.column = column;
    this.row = row;
  }
}

// ---------------------------------------------------------------------------------------------
// Types.

const SCALAR_TYPES = [
  "boolean",
  "int32",
  "int64",
  "float32",
  "float64",
  "utf8",
  "binary",
  "timestamp",
];

/** Parses a type string ("int64?", "float32-vector(4)") into a WIT field. */
export function field(name, type) {
  if (typeof type !== "string") {
    throw new TypeError(`column ${name}: the type must be a string like "float64?", not ${type}`);
  }
  const nullable = type.endsWith("?");
  const base = nullable ? type.slice(0, -1) : type;
  const vector = /^float32-vector\((\d+)\)$/.exec(base);
  let dataType;
  if (vector && Number(vector[1]) > 0) {
    dataType = { tag: "float32-vector", val: Number(vector[1]) };
  } else if (SCALAR_TYPES.includes(base)) {
    dataType = { tag: base };
  } else {
    throw new TypeError(
      `column ${name}: unknown type "${type}"; expected one of ${SCALAR_TYPES.join(", ")}, ` +
        `float32-vector(N), with a trailing "?" for a nullable column`,
    );
  }
  return { name, dataType, nullable };
}

/** A WIT signature from `{ name, version, description, inputs, outputs }` with type strings. */
export function signature({ name, version, description = "", inputs = {}, outputs = {} }) {
  const fields = (columns) => Object.entries(columns).map(([n, t]) => field(n, t));
  return { name, version, description, inputs: fields(inputs), outputs: fields(outputs) };
}

// ---------------------------------------------------------------------------------------------
// Reading a batch.

function isValid(bitmap, i) {
  return ((bitmap[i >> 3] >> (i & 7)) & 1) === 1;
}

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** A read-only view of an input batch: each accessor returns one array per column. */
export class Batch {
  constructor(raw) {
    this.numRows = raw.numRows;
    this.columns = new Map(raw.columns.map((c) => [c.name, c]));
  }

  column(name, tag) {
    const column = this.columns.get(name);
    if (column === undefined) {
      const names = [...this.columns.keys()].join(", ") || "none";
      throw new TransformError(`the input has no column \`${name}\` (it has: ${names})`, {
        column: name,
      });
    }
    if (column.values.tag !== tag) {
      throw new TransformError(
        `column \`${name}\` holds ${column.values.tag} values, expected ${tag}`,
        { column: name },
      );
    }
    return column;
  }

  withNulls(column, get) {
    const n = this.numRows;
    const out = new Array(n);
    const validity = column.validity;
    if (validity == null) {
      for (let i = 0; i < n; i++) out[i] = get(i);
    } else {
      for (let i = 0; i < n; i++) out[i] = isValid(validity, i) ? get(i) : null;
    }
    return out;
  }

  primitive(name, tag) {
    const column = this.column(name, tag);
    const values = column.values.val;
    return this.withNulls(column, (i) => values[i]);
  }

  boolean(name) {
    const bits = this.column(name, "boolean").values.val;
    return this.withNulls(this.column(name, "boolean"), (i) => isValid(bits, i));
  }
  int32(name) {
    return this.primitive(name, "int32");
  }
  /** BigInts. */
  int64(name) {
    return this.primitive(name, "int64");
  }
  float32(name) {
    return this.primitive(name, "float32");
  }
  float64(name) {
    return this.primitive(name, "float64");
  }
  /** Microseconds since the Unix epoch, UTC, as BigInts. */
  timestamp(name) {
    return this.primitive(name, "timestamp");
  }
  binary(name) {
    const { offsets, data } = this.column(name, "binary").values.val;
    return this.withNulls(this.column(name, "binary"), (i) =>
      data.subarray(offsets[i], offsets[i + 1]),
    );
  }
  utf8(name) {
    const { offsets, data } = this.column(name, "utf8").values.val;
    return this.withNulls(this.column(name, "utf8"), (i) =>
      decoder.decode(data.subarray(offsets[i], offsets[i + 1])),
    );
  }
  /** Each row's embedding as a Float32Array of `dimension` values. */
  vector(name, dimension) {
    const flat = this.column(name, "float32-vector").values.val;
    return this.withNulls(this.column(name, "float32-vector"), (i) =>
      flat.subarray(i * dimension, (i + 1) * dimension),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Building a batch.

function bitmap(n, isSet) {
  const bytes = new Uint8Array((n + 7) >> 3);
  for (let i = 0; i < n; i++) if (isSet(i)) bytes[i >> 3] |= 1 << (i & 7);
  return bytes;
}

function bad(name, kind, i, v) {
  return new TransformError(`output column \`${name}\` expects ${kind} values, row ${i} holds ${v}`, {
    column: name,
    row: i,
  });
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Collects output columns, each an array with one value (or `null`) per row. */
export class BatchBuilder {
  constructor(numRows) {
    this.numRows = numRows;
    this.columns = [];
  }

  add(name, values, tag, encoded) {
    if (values.length !== this.numRows) {
      throw new TransformError(
        `output column \`${name}\` has ${values.length} values, expected ${this.numRows} (one per input row)`,
        { column: name },
      );
    }
    const hasNulls = values.some((v) => v === null || v === undefined);
    const validity = hasNulls ? bitmap(this.numRows, (i) => values[i] != null) : undefined;
    this.columns.push({ name, values: { tag, val: encoded }, validity });
    return this;
  }

  boolean(name, values) {
    values.forEach((v, i) => {
      if (v != null && typeof v !== "boolean") throw bad(name, "boolean", i, v);
    });
    return this.add(name, values, "boolean", bitmap(values.length, (i) => values[i] === true));
  }

  numbers(name, values, tag, TypedArray, check) {
    const out = new TypedArray(values.length);
    values.forEach((v, i) => {
      if (v == null) return;
      if (!check(v)) throw bad(name, tag, i, v);
      out[i] = v;
    });
    return this.add(name, values, tag, out);
  }

  int32(name, values) {
    return this.numbers(name, values, "int32", Int32Array, (v) => Number.isInteger(v) && (v | 0) === v);
  }
  float32(name, values) {
    return this.numbers(name, values, "float32", Float32Array, (v) => typeof v === "number");
  }
  float64(name, values) {
    return this.numbers(name, values, "float64", Float64Array, (v) => typeof v === "number");
  }

  bigints(name, values, tag) {
    const out = new BigInt64Array(values.length);
    values.forEach((v, i) => {
      if (v == null) return;
      // A Number is accepted when it is an integer: it converts exactly.
      const big = typeof v === "bigint" ? v : Number.isInteger(v) ? BigInt(v) : null;
      if (big === null || big < INT64_MIN || big > INT64_MAX) throw bad(name, tag, i, v);
      out[i] = big;
    });
    return this.add(name, values, tag, out);
  }
  /** BigInts (or integer Numbers). */
  int64(name, values) {
    return this.bigints(name, values, "int64");
  }
  /** Microseconds since the Unix epoch, UTC: BigInts (or integer Numbers). */
  timestamp(name, values) {
    return this.bigints(name, values, "timestamp");
  }

  varLen(name, values, tag, encode) {
    const parts = values.map((v, i) => {
      if (v == null) return new Uint8Array(0);
      const bytes = encode(v);
      if (bytes === null) throw bad(name, tag, i, v);
      return bytes;
    });
    const offsets = new Int32Array(values.length + 1);
    let total = 0;
    parts.forEach((p, i) => {
      total += p.length;
      offsets[i + 1] = total;
    });
    const data = new Uint8Array(total);
    parts.forEach((p, i) => data.set(p, offsets[i]));
    return this.add(name, values, tag, { offsets, data });
  }
  utf8(name, values) {
    return this.varLen(name, values, "utf8", (v) => (typeof v === "string" ? encoder.encode(v) : null));
  }
  binary(name, values) {
    return this.varLen(name, values, "binary", (v) => (v instanceof Uint8Array ? v : null));
  }
  vector(name, dimension, values) {
    const flat = new Float32Array(values.length * dimension);
    values.forEach((v, i) => {
      if (v == null) return;
      if (v.length !== dimension) {
        throw new TransformError(
          `output column \`${name}\` holds vectors of ${dimension} floats, row ${i} has ${v.length}`,
          { column: name, row: i },
        );
      }
      flat.set(v, i * dimension);
    });
    return this.add(name, values, "float32-vector", flat);
  }

  finish() {
    return { numRows: this.numRows, columns: this.columns };
  }
}

// ---------------------------------------------------------------------------------------------
// Exports.

function asWitError(e) {
  if (e instanceof TransformError) {
    return { message: e.message, column: e.column ?? undefined, row: e.row ?? undefined };
  }
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return { message, column: undefined, row: undefined };
}

function exported(sig, run) {
  return {
    describe: () => sig,
    transform: (raw) => {
      try {
        return run(raw);
      } catch (e) {
        // componentize-js turns a thrown value into the `err` of the WIT result.
        throw asWitError(e);
      }
    },
  };
}

function reader(batch, f) {
  const tag = f.dataType.tag;
  switch (tag) {
    case "float32-vector":
      return batch.vector(f.name, f.dataType.val);
    case "float32":
      return batch.float32(f.name);
    default:
      return batch[tag](f.name);
  }
}

function writer(builder, f, values) {
  const tag = f.dataType.tag;
  if (tag === "float32-vector") return builder.vector(f.name, f.dataType.val, values);
  return builder[tag](f.name, values);
}

/**
 * A per-row transform: `fn(row) => output`, where `row` has one property per input column
 * and `output` one per output column. Returns `{ describe, transform }` to export.
 */
export function rowTransform(spec, fn) {
  const sig = signature(spec);
  return exported(sig, (raw) => {
    const batch = new Batch(raw);
    const n = batch.numRows;
    const columns = sig.inputs.map((f) => {
      const values = reader(batch, f);
      if (!f.nullable) {
        const row = values.indexOf(null);
        if (row >= 0) {
          throw new TransformError(`input column \`${f.name}\` has a null in row ${row}, but is declared "${spec.inputs[f.name]}"`, {
            column: f.name,
            row,
          });
        }
      }
      return values;
    });
    const outputs = sig.outputs.map(() => new Array(n));
    for (let row = 0; row < n; row++) {
      const input = {};
      sig.inputs.forEach((f, c) => {
        input[f.name] = columns[c][row];
      });
      let result;
      try {
        result = fn(input);
      } catch (e) {
        if (e instanceof TransformError) {
          if (e.row === null) e.row = row;
          throw e;
        }
        const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        throw new TransformError(message, { row });
      }
      if (result === null || typeof result !== "object") {
        throw new TransformError(`the transform returned ${result} for row ${row}, expected an object with the output columns`, { row });
      }
      sig.outputs.forEach((f, c) => {
        const v = result[f.name];
        if (v === undefined) {
          throw new TransformError(`the output for row ${row} has no property \`${f.name}\` (use null for a null)`, {
            column: f.name,
            row,
          });
        }
        if (v === null && !f.nullable) {
          throw new TransformError(`output \`${f.name}\` is null in row ${row}, but is declared "${spec.outputs[f.name]}"`, {
            column: f.name,
            row,
          });
        }
        outputs[c][row] = v;
      });
    }
    const builder = new BatchBuilder(n);
    sig.outputs.forEach((f, c) => writer(builder, f, outputs[c]));
    return builder.finish();
  });
}

/**
 * A columnar transform: `fn(batch)` returns a `BatchBuilder` (or a finished batch).
 * `spec` is a signature as `signature()` takes it. Returns `{ describe, transform }`.
 */
export function columnarTransform(spec, fn) {
  const sig = signature(spec);
  return exported(sig, (raw) => {
    const result = fn(new Batch(raw));
    return result instanceof BatchBuilder ? result.finish() : result;
  });
}
