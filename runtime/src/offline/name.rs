//! [`TableName`]: a validated `namespace.table` identifier.

use std::fmt;
use std::str::FromStr;

use iceberg::{NamespaceIdent, TableIdent};

use crate::error::{Error, ErrorKind, Result};

/// The longest namespace or table part the SQL catalog can store (`VARCHAR(255)`).
const MAX_PART_LEN: usize = 255;

/// A table in the offline store: `namespace.table`, each part an identifier of ASCII letters,
/// digits and underscores that does not start with a digit.
///
/// One namespace level only: it keeps names portable across engines (Spark, Trino and the SQL
/// catalog all agree on `db.table`) and unambiguous to parse.
///
/// ```
/// use skewless_runtime::offline::TableName;
///
/// let name: TableName = "features.transactions_v1".parse()?;
/// assert_eq!(name.namespace(), "features");
/// assert_eq!(name.table(), "transactions_v1");
/// assert!("transactions".parse::<TableName>().is_err());
/// # Ok::<(), skewless_runtime::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    namespace: String,
    table: String,
}

impl TableName {
    /// A table name from its two parts, validated.
    pub fn new(namespace: &str, table: &str) -> Result<Self> {
        let full = format!("{namespace}.{table}");
        check_part(&full, "namespace", namespace)?;
        check_part(&full, "table", table)?;
        Ok(TableName {
            namespace: namespace.to_owned(),
            table: table.to_owned(),
        })
    }

    /// Parses `namespace.table`.
    pub fn parse(name: &str) -> Result<Self> {
        match name.split_once('.') {
            Some((namespace, table)) if !table.contains('.') => TableName::new(namespace, table),
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                "expected a table name of the form `namespace.table` (exactly one dot), \
                 for example `features.transactions`",
            )
            .with_context("table", name)),
        }
    }

    /// The namespace part.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The table part.
    pub fn table(&self) -> &str {
        &self.table
    }

    pub(super) fn namespace_ident(&self) -> NamespaceIdent {
        NamespaceIdent::new(self.namespace.clone())
    }

    pub(super) fn ident(&self) -> TableIdent {
        TableIdent::new(self.namespace_ident(), self.table.clone())
    }
}

fn check_part(full: &str, what: &str, part: &str) -> Result<()> {
    let problem = if part.is_empty() {
        Some("is empty")
    } else if part.len() > MAX_PART_LEN {
        Some("is longer than 255 bytes")
    } else if part.as_bytes()[0].is_ascii_digit() {
        Some("starts with a digit")
    } else if !part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Some("has characters other than ASCII letters, digits and `_`")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the {what} part `{part}` {problem}: expected `namespace.table`, each part \
                 ASCII letters, digits and `_`, not starting with a digit"
            ),
        )
        .with_context("table", full)),
    }
}

impl FromStr for TableName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        TableName::parse(s)
    }
}

impl TryFrom<&str> for TableName {
    type Error = Error;

    fn try_from(s: &str) -> Result<Self> {
        TableName::parse(s)
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.namespace, self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let name = TableName::parse("ns.t_1").unwrap();
        assert_eq!(name.to_string(), "ns.t_1");
        for bad in ["", "t", ".t", "ns.", "a.b.c", "ns.1t", "ns.t-x", "n s.t"] {
            let e = TableName::parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
            assert_eq!(e.context_value("table"), Some(bad), "{bad}");
        }
    }
}
