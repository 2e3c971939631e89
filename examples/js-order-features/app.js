// order-features in JavaScript: the same definition as the Rust example
// `examples/order-features`, checked bit for bit against it by `tests/all/languages.rs`.
//
// Where JavaScript needs care to stay exact:
// - `quantity` is an int64, so it arrives as a BigInt; `Number(q)` rounds to nearest like
//   Rust's `as f64`. Never mix BigInt and Number in one expression (a TypeError).
// - `Math.sqrt` and `Math.floor` are correctly rounded / exact (not so `Math.log` or `**`).
// - FNV-1a needs wrapping 32-bit multiplication: `Math.imul(h, prime) >>> 0`; a plain `*` on
//   Numbers loses the low bits once the product passes 2^53.
// - Strings: `String.prototype.trim()` strips all Unicode whitespace, and `toUpperCase()` maps
//   "ß" to "SS"; both are avoided. Lengths are counted in UTF-8 bytes, as in Rust.
//
// Build: `skewless build examples/js-order-features`.

import { rowTransform } from "./skewless_guest.js";

const BULK_QUANTITY = 10n;
const COUNTRY_BUCKETS = 64;
const CENTS_LIMIT = 9007199254740992; // 2 ** 53
const encoder = new TextEncoder();

export const { describe, transform } = rowTransform(
  {
    name: "order-features",
    version: "1.0.0",
    description:
      "Unit price, square root and cents of the amount, normalized country code and its bucket, bulk flag.",
    inputs: { amount: "float64?", quantity: "int64?", country: "utf8?" },
    outputs: {
      unit_price: "float64?",
      amount_sqrt: "float64?",
      amount_cents: "int64?",
      country_code: "utf8?",
      country_bucket: "int32?",
      is_bulk: "boolean",
    },
  },
  (order) => {
    const amount = order.amount === null || Number.isNaN(order.amount) ? null : order.amount;
    const quantity = order.quantity;

    let unitPrice = null;
    if (amount !== null && quantity !== null && quantity > 0n) {
      const price = amount / Number(quantity);
      if (Number.isFinite(price)) unitPrice = price;
    }

    let cents = null;
    if (amount !== null) {
      const scaled = amount * 100;
      if (Math.abs(scaled) < CENTS_LIMIT) cents = BigInt(Math.floor(scaled));
    }

    const code = order.country === null ? null : countryCode(order.country);
    return {
      unit_price: unitPrice,
      amount_sqrt: amount !== null && amount >= 0 ? Math.sqrt(amount) : null,
      amount_cents: cents,
      country_code: code,
      country_bucket: code === null ? null : fnv1a32(encoder.encode(code)) % COUNTRY_BUCKETS,
      is_bulk: quantity !== null && quantity >= BULK_QUANTITY,
    };
  },
);

/** `country` without surrounding spaces, upper-cased, when that is two ASCII letters. */
function countryCode(country) {
  let start = 0;
  let end = country.length;
  while (start < end && country[start] === " ") start++;
  while (end > start && country[end - 1] === " ") end--;
  const trimmed = country.slice(start, end);
  return /^[A-Za-z]{2}$/.test(trimmed) ? trimmed.toUpperCase() : null;
}

/** 32-bit FNV-1a with wrapping multiplication. */
function fnv1a32(bytes) {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}
