/* __NAME__: a skewless feature transform.
 *
 * Build: `skewless build`. Try it: `skewless run <component> --input input.csv --output out.parquet`
 * and `skewless show out.parquet`.
 */
#include <math.h>

#include "skewless.h"

static void describe(skewless_signature_t *sig) {
    skewless_signature_init(sig, "__NAME__", "0.1.0",
                            "Amount in cents, refund flag and normalized category.");
    skewless_signature_input(sig, "amount", SKEWLESS_FLOAT64, true);
    skewless_signature_input(sig, "category", SKEWLESS_UTF8, true);
    skewless_signature_output(sig, "amount_cents", SKEWLESS_INT64, true);
    skewless_signature_output(sig, "is_refund", SKEWLESS_BOOLEAN, false);
    skewless_signature_output(sig, "category_normalized", SKEWLESS_UTF8, true);
}

static bool transform(const skewless_batch_t *in, skewless_output_t *out, skewless_error_t *err) {
    skewless_column_t amount, category;
    if (!skewless_input(in, "amount", SKEWLESS_FLOAT64, &amount, err) ||
        !skewless_input(in, "category", SKEWLESS_UTF8, &category, err))
        return false;
    skewless_builder_t *cents = skewless_output_column(out, "amount_cents", SKEWLESS_INT64);
    skewless_builder_t *is_refund = skewless_output_column(out, "is_refund", SKEWLESS_BOOLEAN);
    skewless_builder_t *normalized = skewless_output_column(out, "category_normalized", SKEWLESS_UTF8);
    char buffer[256];
    for (size_t i = 0; i < in->num_rows; i++) {
        bool has_amount = !skewless_is_null(&amount, i) && !isnan(skewless_f64(&amount, i));
        double scaled = skewless_f64(&amount, i) * 100.0;
        /* Null when missing or too large for every cent to be exact in a double (2^53). */
        if (has_amount && fabs(scaled) < 9007199254740992.0) skewless_push_i64(cents, (int64_t)floor(scaled));
        else skewless_push_null(cents);
        skewless_push_bool(is_refund, has_amount && skewless_f64(&amount, i) < 0.0);

        size_t len;
        const char *text = skewless_bytes(&category, i, &len);
        while (len > 0 && text[0] == ' ') text++, len--;
        while (len > 0 && text[len - 1] == ' ') len--;
        if (skewless_is_null(&category, i) || len == 0) {
            skewless_push_null(normalized);
            continue;
        }
        if (len > sizeof buffer)
            return skewless_fail(err, "category longer than 256 bytes", "category", (int64_t)i);
        for (size_t j = 0; j < len; j++)
            buffer[j] = (text[j] >= 'A' && text[j] <= 'Z') ? (char)(text[j] - 'A' + 'a') : text[j];
        skewless_push_bytes(normalized, buffer, len);
    }
    return true;
}

SKEWLESS_EXPORT(describe, transform)
