// __NAME__: a skewless feature transform.
//
// Build: `skewless build`. Try it: `skewless run <component> --input input.csv --output out.parquet`
// and `skewless show out.parquet`.

import { rowTransform } from "./skewless_guest.js";

export const { describe, transform } = rowTransform(
  {
    name: "__NAME__",
    version: "0.1.0",
    description: "Amount in cents, refund flag and normalized category.",
    // Type strings; a trailing "?" makes a column nullable (null in JavaScript).
    inputs: { amount: "float64?", category: "utf8?" },
    outputs: { amount_cents: "int64?", is_refund: "boolean", category_normalized: "utf8?" },
  },
  (row) => {
    const amount = row.amount === null || Number.isNaN(row.amount) ? null : row.amount;
    // Null when missing or too large for every cent to be exact in a Number (2^53).
    const cents =
      amount !== null && Math.abs(amount * 100) < 2 ** 53 ? BigInt(Math.floor(amount * 100)) : null;
    let category = null;
    if (row.category !== null) {
      // Only spaces and ASCII letters: trim() and toLowerCase() go further (all Unicode).
      const trimmed = row.category.replace(/^ +| +$/g, "");
      category = trimmed.replace(/[A-Z]/g, (c) => c.toLowerCase()) || null;
    }
    return { amount_cents: cents, is_refund: amount !== null && amount < 0, category_normalized: category };
  },
);
