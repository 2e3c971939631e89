//! # `merchant-category`: normalize a merchant name, categorize it, hash it
//!
//! A columnar transform (`skewless_guest::Transform`): it reads the `merchant` column once as
//! Arrow offsets + bytes and writes three columns, with no allocation per row (each name is
//! normalized into one reused buffer).
//!
//! | Column | Type | Definition |
//! |---|---|---|
//! | in `merchant` | utf8, nullable | the merchant descriptor from the card statement |
//! | out `merchant_normalized` | utf8, nullable | see [`normalize`] |
//! | out `merchant_category` | utf8, nullable | see [`category`]: `grocery`, `dining`, `travel`, `fuel`, `entertainment`, `online_retail` or `other` |
//! | out `merchant_hash` | int32, nullable | [`fnv1a_64`] of the normalized name's UTF-8 bytes, mod [`HASH_BUCKETS`] (0-1023) |
//!
//! A null `merchant` gives nulls in all three outputs. An input that normalizes to the empty
//! string (say `"#1234"`) gives `""`, `other` and the hash of `""`.
//!
//! Normalization, in order ([`normalize`]):
//! 1. lowercase (Unicode);
//! 2. strip one payment-processor prefix: a leading `sq`, `tst`, `paypal`, `pp`, `sp`, `in` or
//!    `py` followed by `*` (spaces allowed around the name and star), as in `SQ *BLUE BOTTLE`,
//!    `TST* Joe's Diner`, `PAYPAL *EBAY`;
//! 3. remove store numbers: `#` followed by digits (`#1234`);
//! 4. drop apostrophes (`mcdonald's` → `mcdonalds`), turn every other character that is not a
//!    letter or digit into a space;
//! 5. drop trailing words made only of digits (`shell oil 57442` → `shell oil`);
//! 6. collapse runs of spaces into one and trim.
//!
//! Build the component (`target/wasm32-wasip2/guest/merchant_category.wasm`):
//!
//! ```text
//! cargo build --profile guest --target wasm32-wasip2 -p merchant-category
//! ```

use skewless_guest::{
    Batch, BatchBuilder, DataType, Field, Int32Builder, Signature, Transform, TransformError,
    Utf8Builder, export_transform,
};

/// The number of hash buckets of `merchant_hash`.
pub const HASH_BUCKETS: u64 = 1024;

/// Payment processors whose `<name>*` prefix is stripped.
pub const PROCESSOR_PREFIXES: &[&str] = &["sq", "tst", "paypal", "pp", "sp", "in", "py"];

/// Keywords (whole words or phrases of the normalized name) and their category; the first
/// match in this order wins, so specific phrases come before the words they contain.
pub const CATEGORY_KEYWORDS: &[(&str, &str)] = &[
    // Phrases first.
    ("uber eats", "dining"),
    ("whole foods", "grocery"),
    ("trader joe", "grocery"),
    ("trader joes", "grocery"),
    ("amazon prime video", "entertainment"),
    ("prime video", "entertainment"),
    ("walmart com", "online_retail"),
    ("target com", "online_retail"),
    ("bestbuy com", "online_retail"),
    ("american airlines", "travel"),
    ("united airlines", "travel"),
    ("delta air", "travel"),
    ("booking com", "travel"),
    // Grocery.
    ("safeway", "grocery"),
    ("kroger", "grocery"),
    ("aldi", "grocery"),
    ("lidl", "grocery"),
    ("publix", "grocery"),
    ("costco", "grocery"),
    ("wegmans", "grocery"),
    ("albertsons", "grocery"),
    ("tesco", "grocery"),
    ("sainsburys", "grocery"),
    ("grocery", "grocery"),
    ("groceries", "grocery"),
    ("supermarket", "grocery"),
    ("market", "grocery"),
    // Fuel (before dining: "shell" stations sell coffee too).
    ("shell", "fuel"),
    ("chevron", "fuel"),
    ("exxon", "fuel"),
    ("exxonmobil", "fuel"),
    ("mobil", "fuel"),
    ("bp", "fuel"),
    ("texaco", "fuel"),
    ("valero", "fuel"),
    ("sunoco", "fuel"),
    ("arco", "fuel"),
    ("fuel", "fuel"),
    ("petrol", "fuel"),
    ("gas", "fuel"),
    // Dining.
    ("starbucks", "dining"),
    ("mcdonalds", "dining"),
    ("chipotle", "dining"),
    ("doordash", "dining"),
    ("grubhub", "dining"),
    ("restaurant", "dining"),
    ("cafe", "dining"),
    ("coffee", "dining"),
    ("pizza", "dining"),
    ("burger", "dining"),
    ("grill", "dining"),
    ("diner", "dining"),
    ("bakery", "dining"),
    ("kitchen", "dining"),
    ("taco", "dining"),
    ("bar", "dining"),
    // Travel.
    ("airlines", "travel"),
    ("airline", "travel"),
    ("airways", "travel"),
    ("southwest", "travel"),
    ("hotel", "travel"),
    ("marriott", "travel"),
    ("hilton", "travel"),
    ("airbnb", "travel"),
    ("expedia", "travel"),
    ("uber", "travel"),
    ("lyft", "travel"),
    ("taxi", "travel"),
    ("amtrak", "travel"),
    ("hertz", "travel"),
    ("avis", "travel"),
    // Entertainment.
    ("netflix", "entertainment"),
    ("spotify", "entertainment"),
    ("hulu", "entertainment"),
    ("disney", "entertainment"),
    ("cinema", "entertainment"),
    ("cinemas", "entertainment"),
    ("theater", "entertainment"),
    ("theatre", "entertainment"),
    ("amc", "entertainment"),
    ("regal", "entertainment"),
    ("steam", "entertainment"),
    ("playstation", "entertainment"),
    ("xbox", "entertainment"),
    ("ticketmaster", "entertainment"),
    // Online retail.
    ("amazon", "online_retail"),
    ("amzn", "online_retail"),
    ("ebay", "online_retail"),
    ("etsy", "online_retail"),
    ("shopify", "online_retail"),
    ("aliexpress", "online_retail"),
    ("temu", "online_retail"),
    ("wayfair", "online_retail"),
];

/// The category of names matching no keyword.
pub const OTHER: &str = "other";

/// The merchant-category transform.
#[derive(Debug)]
pub struct MerchantCategory;

impl Transform for MerchantCategory {
    fn signature() -> Signature {
        Signature::new("merchant-category", "1.0.0")
            .description("Normalized merchant name, keyword category and FNV-1a hash bucket")
            .input(Field::new("merchant", DataType::Utf8, true))
            .output(Field::new("merchant_normalized", DataType::Utf8, true))
            .output(Field::new("merchant_category", DataType::Utf8, true))
            .output(Field::new("merchant_hash", DataType::Int32, true))
    }

    fn transform(input: &Batch) -> Result<Batch, TransformError> {
        let merchants = input.utf8("merchant")?;
        let rows = input.num_rows();
        let mut normalized = Utf8Builder::with_capacities(rows, rows * 16);
        let mut categories = Utf8Builder::with_capacities(rows, rows * 8);
        let mut hashes = Int32Builder::with_capacity(rows);
        let mut buffer = String::new();
        for merchant in merchants.iter() {
            match merchant {
                Some(merchant) => {
                    normalize_into(merchant, &mut buffer);
                    normalized.push_value(&buffer);
                    categories.push_value(category(&buffer));
                    hashes.push_value(hash_bucket(&buffer));
                }
                None => {
                    normalized.push_null();
                    categories.push_null();
                    hashes.push_null();
                }
            }
        }
        BatchBuilder::new(rows)
            .column("merchant_normalized", normalized)
            .column("merchant_category", categories)
            .column("merchant_hash", hashes)
            .finish()
    }
}

export_transform!(MerchantCategory);

/// The normalized merchant name (see the crate documentation).
pub fn normalize(merchant: &str) -> String {
    let mut out = String::new();
    normalize_into(merchant, &mut out);
    out
}

/// [`normalize`] into a reused buffer, which is cleared first.
pub fn normalize_into(merchant: &str, out: &mut String) {
    out.clear();
    let lower;
    let lower = if merchant.is_ascii() && !merchant.bytes().any(|b| b.is_ascii_uppercase()) {
        merchant
    } else {
        lower = merchant.to_lowercase();
        lower.as_str()
    };
    let rest = strip_processor_prefix(lower);

    // Steps 3, 4 and 6: one pass writing words separated by single spaces.
    let mut pending_space = false;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '#' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.next_if(char::is_ascii_digit).is_some() {}
            pending_space = true;
        } else if c == '\'' || c == '\u{2019}' {
            // Apostrophes join: "mcdonald's" -> "mcdonalds".
        } else if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        } else {
            pending_space = true;
        }
    }

    // Step 5: drop trailing all-digit words.
    loop {
        let last_word_start = out.rfind(' ').map_or(0, |i| i + 1);
        let last_word = &out[last_word_start..];
        if last_word.is_empty() || !last_word.bytes().all(|b| b.is_ascii_digit()) {
            break;
        }
        out.truncate(last_word_start.saturating_sub(1));
    }
}

/// Strips `<processor> *` from the start of a lowercased name.
fn strip_processor_prefix(name: &str) -> &str {
    let trimmed = name.trim_start();
    if let Some((head, rest)) = trimmed.split_once('*')
        && PROCESSOR_PREFIXES.contains(&head.trim())
    {
        return rest;
    }
    trimmed
}

/// The category of a normalized name: the first entry of [`CATEGORY_KEYWORDS`] whose keyword
/// is a whole word or run of whole words of the name, else [`OTHER`].
pub fn category(normalized: &str) -> &'static str {
    CATEGORY_KEYWORDS
        .iter()
        .find(|(keyword, _)| contains_words(normalized, keyword))
        .map_or(OTHER, |(_, category)| category)
}

/// Whether `words` occurs in `text` at word boundaries (both are space-separated words).
fn contains_words(text: &str, words: &str) -> bool {
    text.match_indices(words).any(|(start, _)| {
        let end = start + words.len();
        (start == 0 || text.as_bytes()[start - 1] == b' ')
            && (end == text.len() || text.as_bytes()[end] == b' ')
    })
}

/// 64-bit FNV-1a: offset basis `0xcbf29ce484222325`, prime `0x100000001b3`, over bytes.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// `fnv1a_64(normalized) % HASH_BUCKETS`.
pub fn hash_bucket(normalized: &str) -> i32 {
    (fnv1a_64(normalized.as_bytes()) % HASH_BUCKETS) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_statement_descriptors() {
        let cases = [
            ("SQ *BLUE BOTTLE COFFEE", "blue bottle coffee"),
            ("TST* Joe's Diner", "joes diner"),
            ("PAYPAL *EBAY INC", "ebay inc"),
            (
                "  WHOLE FOODS MKT #10245  AUSTIN ",
                "whole foods mkt austin",
            ),
            ("SHELL OIL 57442", "shell oil"),
            ("McDonald's #123 45", "mcdonalds"),
            ("AMAZON.COM*2K3LL1", "amazon com 2k3ll1"),
            ("7-ELEVEN 1234", "7 eleven"),
            ("Café Léa", "café léa"),
            ("#1234", ""),
            ("", ""),
            ("sq*", ""),
        ];
        for (raw, expected) in cases {
            assert_eq!(normalize(raw), expected, "{raw:?}");
        }
    }

    #[test]
    fn categorizes() {
        let cases = [
            ("SQ *BLUE BOTTLE COFFEE", "dining"),
            ("UBER EATS", "dining"),
            ("UBER *TRIP", "travel"),
            ("WHOLE FOODS MKT #10245", "grocery"),
            ("SHELL OIL 57442", "fuel"),
            ("NETFLIX.COM", "entertainment"),
            ("AMZN Mktp US*2K3LL1", "online_retail"),
            ("WALMART.COM", "online_retail"),
            ("DELTA AIR 0062", "travel"),
            ("BARNES NOBLE", "other"),
            ("ACME CORP", "other"),
        ];
        for (raw, expected) in cases {
            assert_eq!(category(&normalize(raw)), expected, "{raw:?}");
        }
    }

    #[test]
    fn fnv1a_matches_reference_vectors() {
        // From the FNV reference test suite.
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
        assert!((0..1024).contains(&hash_bucket("blue bottle coffee")));
    }
}
