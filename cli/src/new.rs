//! `skewless new`: scaffold a transform project.

use std::path::PathBuf;

use clap::Args;

use super::output::outln;
use skewless_toolchain::{Language, ScaffoldOptions, new_project};

#[derive(Debug, Args)]
pub(super) struct NewArgs {
    /// The transform's name, also the project directory's: lowercase letters, digits and `-`.
    name: String,
    /// The language: rust, python, js or c.
    #[arg(long, default_value = "rust")]
    lang: String,
    /// Where to create the project directory.
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// The `guest-sdk` directory a Rust project depends on (default: the one of the skewless
    /// checkout this binary was built from, when present).
    #[arg(long, value_name = "DIR")]
    guest_sdk: Option<PathBuf>,
}

pub(super) fn new(args: &NewArgs) -> skewless_runtime::Result<()> {
    let language: Language = args.lang.parse()?;
    let options = ScaffoldOptions {
        guest_sdk: args.guest_sdk.clone(),
    };
    let (dir, files) = new_project(&args.dir, &args.name, language, &options)?;
    outln!(
        "created {language} transform `{}` in {}",
        args.name,
        dir.display()
    );
    for file in files {
        outln!("  {}", file.display());
    }
    outln!(
        "next: skewless build {0}\n      skewless run <component> --input {0}/input.csv --output out.parquet",
        dir.display()
    );
    Ok(())
}
