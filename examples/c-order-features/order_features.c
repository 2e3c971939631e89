/* order-features in C: the same definition as the Rust example `examples/order-features`,
 * checked bit for bit against it by `tests/all/languages.rs`.
 *
 * Where C needs care to stay exact:
 * - `(double)quantity` rounds to nearest like Rust's `as f64`; `/`, `sqrt` and `floor` are
 *   correctly rounded / exact (not so `log`, `exp` or `pow`, which come from wasi-libc's libm).
 * - `skewless build` compiles with `-ffp-contract=off`, so `a * b + c` is never fused into an
 *   FMA (wasm32 has no scalar FMA today, but the flag keeps that true by construction).
 * - FNV-1a on `uint32_t`: unsigned multiplication wraps, as Rust's `wrapping_mul` does.
 * - Strings arrive as bytes + length (not NUL-terminated); the code looks at bytes only.
 *
 * Build: `skewless build examples/c-order-features`.
 */
#include <math.h>

#include "skewless.h"

#define BULK_QUANTITY 10
#define COUNTRY_BUCKETS 64u
#define CENTS_LIMIT 9007199254740992.0 /* 2^53 */

static void describe(skewless_signature_t *sig) {
    skewless_signature_init(sig, "order-features", "1.0.0",
                            "Unit price, square root and cents of the amount, normalized "
                            "country code and its bucket, bulk flag.");
    skewless_signature_input(sig, "amount", SKEWLESS_FLOAT64, true);
    skewless_signature_input(sig, "quantity", SKEWLESS_INT64, true);
    skewless_signature_input(sig, "country", SKEWLESS_UTF8, true);
    skewless_signature_output(sig, "unit_price", SKEWLESS_FLOAT64, true);
    skewless_signature_output(sig, "amount_sqrt", SKEWLESS_FLOAT64, true);
    skewless_signature_output(sig, "amount_cents", SKEWLESS_INT64, true);
    skewless_signature_output(sig, "country_code", SKEWLESS_UTF8, true);
    skewless_signature_output(sig, "country_bucket", SKEWLESS_INT32, true);
    skewless_signature_output(sig, "is_bulk", SKEWLESS_BOOLEAN, false);
}

static bool is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Writes the two upper-case letters of `country` to `code` when, without surrounding spaces,
 * it is exactly two ASCII letters. */
static bool country_code(const char *country, size_t len, char code[2]) {
    size_t start = 0, end = len;
    while (start < end && country[start] == ' ') start++;
    while (end > start && country[end - 1] == ' ') end--;
    if (end - start != 2 || !is_ascii_letter(country[start]) || !is_ascii_letter(country[start + 1]))
        return false;
    for (int i = 0; i < 2; i++) {
        char c = country[start + i];
        code[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    return true;
}

static uint32_t fnv1a_32(const char *bytes, size_t len) {
    uint32_t h = 0x811c9dc5u;
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)bytes[i]) * 0x01000193u;
    return h;
}

static bool transform(const skewless_batch_t *in, skewless_output_t *out, skewless_error_t *err) {
    skewless_column_t amount, quantity, country;
    if (!skewless_input(in, "amount", SKEWLESS_FLOAT64, &amount, err) ||
        !skewless_input(in, "quantity", SKEWLESS_INT64, &quantity, err) ||
        !skewless_input(in, "country", SKEWLESS_UTF8, &country, err))
        return false;
    skewless_builder_t *unit_price = skewless_output_column(out, "unit_price", SKEWLESS_FLOAT64);
    skewless_builder_t *amount_sqrt = skewless_output_column(out, "amount_sqrt", SKEWLESS_FLOAT64);
    skewless_builder_t *amount_cents = skewless_output_column(out, "amount_cents", SKEWLESS_INT64);
    skewless_builder_t *code_out = skewless_output_column(out, "country_code", SKEWLESS_UTF8);
    skewless_builder_t *bucket = skewless_output_column(out, "country_bucket", SKEWLESS_INT32);
    skewless_builder_t *is_bulk = skewless_output_column(out, "is_bulk", SKEWLESS_BOOLEAN);

    for (size_t i = 0; i < in->num_rows; i++) {
        bool has_amount = !skewless_is_null(&amount, i) && !isnan(skewless_f64(&amount, i));
        double a = skewless_f64(&amount, i);
        bool has_quantity = !skewless_is_null(&quantity, i);
        int64_t q = skewless_i64(&quantity, i);

        double price = has_amount && has_quantity && q > 0 ? a / (double)q : NAN;
        if (isfinite(price)) skewless_push_f64(unit_price, price);
        else skewless_push_null(unit_price);

        if (has_amount && a >= 0.0) skewless_push_f64(amount_sqrt, sqrt(a));
        else skewless_push_null(amount_sqrt);

        double scaled = a * 100.0;
        if (has_amount && fabs(scaled) < CENTS_LIMIT) skewless_push_i64(amount_cents, (int64_t)floor(scaled));
        else skewless_push_null(amount_cents);

        char code[2];
        size_t len;
        const char *text = skewless_bytes(&country, i, &len);
        if (!skewless_is_null(&country, i) && country_code(text, len, code)) {
            skewless_push_bytes(code_out, code, 2);
            skewless_push_i32(bucket, (int32_t)(fnv1a_32(code, 2) % COUNTRY_BUCKETS));
        } else {
            skewless_push_null(code_out);
            skewless_push_null(bucket);
        }

        skewless_push_bool(is_bulk, has_quantity && q >= BULK_QUANTITY);
    }
    return true;
}

SKEWLESS_EXPORT(describe, transform)
