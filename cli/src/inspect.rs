//! `skewless inspect`: what a component is, reads and writes.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::output::{out, outln};
use skewless_runtime::engine::TransformEngine;
use skewless_runtime::signature::{Field, Signature};

#[derive(Debug, Args)]
pub(super) struct InspectArgs {
    /// The component (`.wasm`) to inspect.
    component: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    digest: &'a str,
    size_bytes: u64,
    /// The `skewless:transform` version the component implements.
    contract: &'static str,
    #[serde(flatten)]
    signature: &'a Signature,
}

pub(super) fn inspect(
    engine: &TransformEngine,
    args: &InspectArgs,
) -> skewless_runtime::Result<()> {
    let transform = engine.load_file(&args.component)?;
    let size_bytes = std::fs::metadata(&args.component)?.len();
    let report = Report {
        digest: transform.digest(),
        size_bytes,
        contract: transform.contract_version(),
        signature: transform.signature(),
    };
    if args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| {
            skewless_runtime::Error::new(skewless_runtime::ErrorKind::Internal, e.to_string())
        })?;
        outln!("{json}");
    } else {
        out!("{}", render(&report));
    }
    Ok(())
}

fn render(report: &Report<'_>) -> String {
    let s = report.signature;
    let mut out = format!("{} {}\n", s.name, s.version);
    if !s.description.is_empty() {
        out += &format!("  {}\n", s.description);
    }
    out += &format!(
        "digest  {}\nsize    {} bytes\ncontract skewless:transform@{}\n",
        report.digest, report.size_bytes, report.contract
    );
    for (title, fields) in [("inputs", &s.inputs), ("outputs", &s.outputs)] {
        out += &format!("{title} ({})\n", fields.len());
        out += &render_fields(fields);
    }
    out
}

fn render_fields(fields: &[Field]) -> String {
    let width = fields.iter().map(|f| f.name.len()).max().unwrap_or(0);
    fields
        .iter()
        .map(|f| {
            let nullable = if f.nullable { "nullable" } else { "not null" };
            format!(
                "  {:width$}  {:20}  {nullable}\n",
                f.name,
                f.data_type.to_string()
            )
        })
        .collect()
}
