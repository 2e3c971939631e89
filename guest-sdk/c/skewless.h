/* skewless.h: write skewless feature transforms in C (header only).
 *
 * A transform is a WebAssembly component implementing the `skewless:transform` WIT world:
 * `describe()` returns its signature and `transform(batch)` computes output columns from a
 * columnar, Arrow-shaped batch. `skewless build` generates the bindings (`feature_transform.h`,
 * with wit-bindgen's C generator), puts them and this header on the include path, compiles
 * every `.c` file of the project with clang for wasm32-wasi, and componentizes the module.
 *
 * This header hides the ownership rules of the generated bindings (the transform owns its
 * input and must free it; everything it returns is freed by the bindings with `free`, so it
 * must be heap-allocated) and the Arrow layout (validity bitmaps, offsets + bytes):
 *
 *   #include "skewless.h"
 *
 *   static void describe(skewless_signature_t *sig) {
 *       skewless_signature_init(sig, "double-it", "1.0.0", "Doubles x");
 *       skewless_signature_input(sig, "x", SKEWLESS_FLOAT64, true);
 *       skewless_signature_output(sig, "y", SKEWLESS_FLOAT64, true);
 *   }
 *
 *   static bool transform(const skewless_batch_t *in, skewless_output_t *out,
 *                         skewless_error_t *err) {
 *       skewless_column_t x;
 *       if (!skewless_input(in, "x", SKEWLESS_FLOAT64, &x, err)) return false;
 *       skewless_builder_t *y = skewless_output_column(out, "y", SKEWLESS_FLOAT64);
 *       for (size_t i = 0; i < x.num_rows; i++) {
 *           if (skewless_is_null(&x, i)) skewless_push_null(y);
 *           else skewless_push_f64(y, 2.0 * skewless_f64(&x, i));
 *       }
 *       return true;
 *   }
 *
 *   SKEWLESS_EXPORT(describe, transform)
 *
 * Types: SKEWLESS_BOOLEAN, INT32, INT64, FLOAT32, FLOAT64, UTF8, BINARY, TIMESTAMP
 * (int64 microseconds since the epoch, UTC). Float32 vectors are not covered by the helpers;
 * use the generated types directly for them.
 *
 * Errors: `return skewless_fail(err, "message", "column" or NULL, row or -1);` fails the whole
 * batch. Prefer a null for a value that cannot be computed. Out-of-memory aborts (a trap).
 */
#ifndef SKEWLESS_H
#define SKEWLESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feature_transform.h"

typedef feature_transform_signature_t skewless_signature_t;
typedef feature_transform_batch_t skewless_batch_t;
typedef feature_transform_transform_error_t skewless_error_t;
typedef skewless_transform_types_column_t skewless_wit_column_t;
typedef skewless_transform_types_field_t skewless_field_t;

/* Column types; the values are the WIT `data-type` and `column-values` tags. */
typedef enum {
    SKEWLESS_BOOLEAN = SKEWLESS_TRANSFORM_TYPES_COLUMN_VALUES_BOOLEAN,
    SKEWLESS_INT32 = SKEWLESS_TRANSFORM_TYPES_COLUMN_VALUES_INT32,
    SKEWLESS_INT64 = SKEWLESS_TRANSFORM_TYPES_COLUMN_VALUES_INT64,
    SKEWLESS_FLOAT32 = SKEWLESS_TRANSFORM_TYPES_COLUMN_VALUES_FLOAT32,
    SKEWLESS_FLOAT64 = SKEWLESS_TRANSFORM_TYPES_COLUMN_VALUES_FLOAT64,
    SKEWLESS_UTF8 = SKEWLESS_TRANSFORM_TYPES_COLUMN_VALUES_UTF8,
    SKEWLESS_BINARY = SKEWLESS_TRANSFORM_TYPES_COLUMN_VALUES_BINARY,
    SKEWLESS_TIMESTAMP = SKEWLESS_TRANSFORM_TYPES_COLUMN_VALUES_TIMESTAMP,
} skewless_type_t;

static inline const char *skewless_type_name(uint8_t tag) {
    static const char *const names[] = {"boolean", "int32",  "int64",     "float32",
                                        "float64", "utf8",   "binary",    "timestamp",
                                        "float32-vector"};
    return tag < sizeof(names) / sizeof(names[0]) ? names[tag] : "unknown";
}

/* ------------------------------------------------------------------------------------------ */
/* Allocation: the bindings free what a transform returns, so everything is malloc'ed.       */

static inline void *skewless_alloc(size_t size) {
    /* malloc(0) may return NULL; the canonical ABI accepts any aligned pointer for an empty
     * list, and the bindings never free an empty one. */
    void *p = calloc(size ? size : 1, 1);
    if (!p) abort();
    return p;
}

static inline void skewless_string(feature_transform_string_t *out, const char *s, size_t len) {
    out->ptr = (uint8_t *)skewless_alloc(len);
    memcpy(out->ptr, s, len);
    out->len = len;
}

/* ------------------------------------------------------------------------------------------ */
/* Signature.                                                                                 */

static inline void skewless_signature_init(skewless_signature_t *sig, const char *name,
                                           const char *version, const char *description) {
    memset(sig, 0, sizeof(*sig));
    skewless_string(&sig->name, name, strlen(name));
    skewless_string(&sig->version, version, strlen(version));
    skewless_string(&sig->description, description, strlen(description));
}

static inline void skewless_fields_push(skewless_transform_types_list_field_t *list,
                                        const char *name, skewless_type_t type, bool nullable) {
    skewless_field_t *grown =
        (skewless_field_t *)realloc(list->ptr, (list->len + 1) * sizeof(skewless_field_t));
    if (!grown) abort();
    list->ptr = grown;
    skewless_field_t *f = &list->ptr[list->len++];
    memset(f, 0, sizeof(*f));
    skewless_string(&f->name, name, strlen(name));
    f->data_type.tag = (uint8_t)type;
    f->nullable = nullable;
}

static inline void skewless_signature_input(skewless_signature_t *sig, const char *name,
                                            skewless_type_t type, bool nullable) {
    skewless_fields_push(&sig->inputs, name, type, nullable);
}

static inline void skewless_signature_output(skewless_signature_t *sig, const char *name,
                                             skewless_type_t type, bool nullable) {
    skewless_fields_push(&sig->outputs, name, type, nullable);
}

/* ------------------------------------------------------------------------------------------ */
/* Errors.                                                                                    */

/* Fills `err` and returns false, so that `return skewless_fail(...)` fails the batch.
 * `column` may be NULL and `row` -1 when they do not apply. */
static inline bool skewless_fail(skewless_error_t *err, const char *message, const char *column,
                                 int64_t row) {
    memset(err, 0, sizeof(*err));
    skewless_string(&err->message, message, strlen(message));
    if (column) {
        err->column.is_some = true;
        skewless_string(&err->column.val, column, strlen(column));
    }
    if (row >= 0) {
        err->row.is_some = true;
        err->row.val = (uint32_t)row;
    }
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading input columns.                                                                     */

typedef struct {
    const skewless_wit_column_t *wit;
    size_t num_rows;
    const uint8_t *validity; /* NULL when every row is valid */
} skewless_column_t;

static inline bool skewless_bit(const uint8_t *bitmap, size_t i) {
    return (bitmap[i >> 3] >> (i & 7)) & 1;
}

/* Finds input column `name` and checks its type; on failure fills `err` and returns false. */
static inline bool skewless_input(const skewless_batch_t *in, const char *name,
                                  skewless_type_t type, skewless_column_t *out,
                                  skewless_error_t *err) {
    size_t name_len = strlen(name);
    for (size_t c = 0; c < in->columns.len; c++) {
        const skewless_wit_column_t *col = &in->columns.ptr[c];
        if (col->name.len != name_len || memcmp(col->name.ptr, name, name_len) != 0) continue;
        if (col->values.tag != (uint8_t)type) {
            char message[160];
            snprintf(message, sizeof message, "column `%s` holds %s values, expected %s", name,
                     skewless_type_name(col->values.tag), skewless_type_name((uint8_t)type));
            return skewless_fail(err, message, name, -1);
        }
        out->wit = col;
        out->num_rows = in->num_rows;
        out->validity = col->validity.is_some ? col->validity.val.ptr : NULL;
        return true;
    }
    char message[160];
    snprintf(message, sizeof message, "the input has no column `%s`", name);
    return skewless_fail(err, message, name, -1);
}

static inline bool skewless_is_null(const skewless_column_t *c, size_t i) {
    return c->validity && !skewless_bit(c->validity, i);
}

/* Typed values; the value of a null row is unspecified (zero or empty). */
static inline bool skewless_bool(const skewless_column_t *c, size_t i) {
    return skewless_bit(c->wit->values.val.boolean.ptr, i);
}
static inline int32_t skewless_i32(const skewless_column_t *c, size_t i) {
    return c->wit->values.val.int32.ptr[i];
}
static inline int64_t skewless_i64(const skewless_column_t *c, size_t i) {
    return c->wit->values.val.int64.ptr[i];
}
static inline int64_t skewless_timestamp(const skewless_column_t *c, size_t i) {
    return c->wit->values.val.timestamp.ptr[i];
}
static inline float skewless_f32(const skewless_column_t *c, size_t i) {
    return c->wit->values.val.float32.ptr[i];
}
static inline double skewless_f64(const skewless_column_t *c, size_t i) {
    return c->wit->values.val.float64.ptr[i];
}
/* utf8 or binary: a pointer into the batch (not NUL-terminated) and its length in bytes. */
static inline const char *skewless_bytes(const skewless_column_t *c, size_t i, size_t *len) {
    const skewless_transform_types_var_len_t *v = &c->wit->values.val.utf8;
    int32_t start = v->offsets.ptr[i], end = v->offsets.ptr[i + 1];
    *len = (size_t)(end - start);
    return (const char *)v->data.ptr + start;
}

/* ------------------------------------------------------------------------------------------ */
/* Building output columns: push one value (or a null) per row, in row order.                 */

typedef struct {
    skewless_wit_column_t column;
    skewless_type_t type;
    size_t num_rows; /* rows pushed so far */
    size_t capacity; /* rows allocated */
    size_t data_capacity; /* bytes allocated for utf8/binary data */
    uint8_t *validity;
    bool has_null;
} skewless_builder_t;

/* The output columns of one call, in declaration order. */
typedef struct {
    size_t num_rows;
    size_t len;
    skewless_builder_t *builders[64];
} skewless_output_t;

static inline size_t skewless_width(skewless_type_t type) {
    switch (type) {
    case SKEWLESS_INT32: return 4;
    case SKEWLESS_FLOAT32: return 4;
    case SKEWLESS_INT64: return 8;
    case SKEWLESS_TIMESTAMP: return 8;
    case SKEWLESS_FLOAT64: return 8;
    default: return 0;
    }
}

/* Adds output column `name` of `type`, sized for the batch's rows. At most 64 outputs. */
static inline skewless_builder_t *skewless_output_column(skewless_output_t *out, const char *name,
                                                         skewless_type_t type) {
    if (out->len == sizeof(out->builders) / sizeof(out->builders[0])) abort();
    skewless_builder_t *b = (skewless_builder_t *)skewless_alloc(sizeof(skewless_builder_t));
    size_t n = out->num_rows;
    b->type = type;
    b->capacity = n;
    skewless_string(&b->column.name, name, strlen(name));
    b->column.values.tag = (uint8_t)type;
    b->validity = (uint8_t *)skewless_alloc((n + 7) / 8);
    if (type == SKEWLESS_BOOLEAN) {
        b->column.values.val.boolean.ptr = (uint8_t *)skewless_alloc((n + 7) / 8);
    } else if (type == SKEWLESS_UTF8 || type == SKEWLESS_BINARY) {
        skewless_transform_types_var_len_t *v = &b->column.values.val.utf8;
        v->offsets.ptr = (int32_t *)skewless_alloc((n + 1) * sizeof(int32_t));
        b->data_capacity = 16 * n;
        v->data.ptr = (uint8_t *)skewless_alloc(b->data_capacity);
    } else {
        /* Every primitive list has the same layout: a pointer and a length. */
        b->column.values.val.float64.ptr = (double *)skewless_alloc(n * skewless_width(type));
    }
    out->builders[out->len++] = b;
    return b;
}

static inline size_t skewless_next_row(skewless_builder_t *b, skewless_type_t type) {
    /* Pushing past the batch's rows, or a value of another type, is a bug in the transform. */
    if (b->num_rows >= b->capacity || b->type != type) abort();
    b->validity[b->num_rows >> 3] |= (uint8_t)(1u << (b->num_rows & 7));
    return b->num_rows++;
}

static inline void skewless_push_null(skewless_builder_t *b) {
    if (b->num_rows >= b->capacity) abort();
    b->has_null = true;
    if (b->type == SKEWLESS_UTF8 || b->type == SKEWLESS_BINARY) {
        skewless_transform_types_var_len_t *v = &b->column.values.val.utf8;
        v->offsets.ptr[b->num_rows + 1] = v->offsets.ptr[b->num_rows];
    }
    b->num_rows++; /* the slot keeps its zero and its validity bit stays clear */
}

static inline void skewless_push_bool(skewless_builder_t *b, bool value) {
    size_t i = skewless_next_row(b, SKEWLESS_BOOLEAN);
    if (value) b->column.values.val.boolean.ptr[i >> 3] |= (uint8_t)(1u << (i & 7));
}
static inline void skewless_push_i32(skewless_builder_t *b, int32_t value) {
    b->column.values.val.int32.ptr[skewless_next_row(b, SKEWLESS_INT32)] = value;
}
static inline void skewless_push_i64(skewless_builder_t *b, int64_t value) {
    b->column.values.val.int64.ptr[skewless_next_row(b, SKEWLESS_INT64)] = value;
}
static inline void skewless_push_timestamp(skewless_builder_t *b, int64_t micros) {
    b->column.values.val.timestamp.ptr[skewless_next_row(b, SKEWLESS_TIMESTAMP)] = micros;
}
static inline void skewless_push_f32(skewless_builder_t *b, float value) {
    b->column.values.val.float32.ptr[skewless_next_row(b, SKEWLESS_FLOAT32)] = value;
}
static inline void skewless_push_f64(skewless_builder_t *b, double value) {
    b->column.values.val.float64.ptr[skewless_next_row(b, SKEWLESS_FLOAT64)] = value;
}
/* utf8 (valid UTF-8 is the caller's promise; the host checks it) or binary bytes. */
static inline void skewless_push_bytes(skewless_builder_t *b, const char *bytes, size_t len) {
    if (b->type != SKEWLESS_UTF8 && b->type != SKEWLESS_BINARY) abort();
    size_t i = skewless_next_row(b, b->type);
    skewless_transform_types_var_len_t *v = &b->column.values.val.utf8;
    size_t start = (size_t)v->offsets.ptr[i];
    if (start + len > INT32_MAX) abort();
    if (start + len > b->data_capacity) {
        size_t grown = 2 * b->data_capacity > start + len ? 2 * b->data_capacity : start + len;
        v->data.ptr = (uint8_t *)realloc(v->data.ptr, grown);
        if (!v->data.ptr) abort();
        b->data_capacity = grown;
    }
    memcpy(v->data.ptr + start, bytes, len);
    v->offsets.ptr[i + 1] = (int32_t)(start + len);
}
static inline void skewless_push_str(skewless_builder_t *b, const char *s) {
    skewless_push_bytes(b, s, strlen(s));
}

/* Moves the builders into the WIT batch `ret`; checks every column got one value per row. */
static inline bool skewless_output_finish(skewless_output_t *out, skewless_batch_t *ret,
                                          skewless_error_t *err) {
    ret->num_rows = (uint32_t)out->num_rows;
    ret->columns.len = out->len;
    ret->columns.ptr = (skewless_wit_column_t *)skewless_alloc(out->len * sizeof(skewless_wit_column_t));
    bool ok = true;
    for (size_t c = 0; c < out->len; c++) {
        skewless_builder_t *b = out->builders[c];
        if (ok && b->num_rows != out->num_rows) {
            char message[200];
            snprintf(message, sizeof message,
                     "output column `%.*s` got %zu values, expected %zu (one per input row)",
                     (int)b->column.name.len, (const char *)b->column.name.ptr, b->num_rows,
                     out->num_rows);
            ok = skewless_fail(err, message, NULL, -1);
        }
        size_t n = out->num_rows;
        switch (b->type) {
        case SKEWLESS_BOOLEAN: b->column.values.val.boolean.len = (n + 7) / 8; break;
        case SKEWLESS_UTF8:
        case SKEWLESS_BINARY:
            b->column.values.val.utf8.offsets.len = n + 1;
            b->column.values.val.utf8.data.len = (size_t)b->column.values.val.utf8.offsets.ptr[n];
            break;
        default: b->column.values.val.float64.len = n; break;
        }
        if (b->has_null) {
            b->column.validity.is_some = true;
            b->column.validity.val.ptr = b->validity;
            b->column.validity.val.len = (n + 7) / 8;
        } else {
            free(b->validity);
        }
        ret->columns.ptr[c] = b->column;
        free(b);
    }
    out->len = 0;
    if (!ok) {
        feature_transform_batch_free(ret);
        memset(ret, 0, sizeof(*ret));
    }
    return ok;
}

/* Defines the two exports of the world from `describe(skewless_signature_t *)` and
 * `transform(const skewless_batch_t *, skewless_output_t *, skewless_error_t *)`: frees the
 * input (the bindings hand its ownership to the transform) and finishes the output. */
#define SKEWLESS_EXPORT(describe_fn, transform_fn)                                               \
    void exports_feature_transform_describe(skewless_signature_t *ret) {                        \
        memset(ret, 0, sizeof(*ret));                                                           \
        describe_fn(ret);                                                                       \
    }                                                                                           \
    bool exports_feature_transform_transform(skewless_batch_t *input, skewless_batch_t *ret,    \
                                             skewless_error_t *err) {                           \
        skewless_output_t out;                                                                  \
        memset(&out, 0, sizeof out);                                                            \
        out.num_rows = input->num_rows;                                                         \
        bool ok = transform_fn(input, &out, err);                                               \
        feature_transform_batch_free(input);                                                    \
        if (!ok) {                                                                              \
            /* Drop the columns built so far; `err` was filled by skewless_fail. */              \
            skewless_batch_t unused;                                                            \
            skewless_error_t ignored;                                                           \
            if (skewless_output_finish(&out, &unused, &ignored)) feature_transform_batch_free(&unused); \
            else skewless_transform_types_transform_error_free(&ignored);                       \
            return false;                                                                       \
        }                                                                                       \
        return skewless_output_finish(&out, ret, err);                                          \
    }

#endif /* SKEWLESS_H */
