//! `skewless build`: run a transform project's toolchain and report the component.

use std::path::PathBuf;

use clap::Args;

use super::output::outln;
use skewless_toolchain::{BuildOptions, build as build_project};

#[derive(Debug, Args)]
pub(super) struct BuildArgs {
    /// The project directory (Cargo.toml, app.py, app.js or .c files).
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Where the component and intermediate files go [default: <path>/target].
    #[arg(long, value_name = "DIR")]
    target_dir: Option<PathBuf>,
}

pub(super) fn build(args: &BuildArgs) -> skewless_runtime::Result<()> {
    let options = BuildOptions {
        target_dir: args.target_dir.clone(),
        search_path: None,
    };
    let built = build_project(&args.path, &options)?;
    let state = if built.rebuilt { "built" } else { "up to date" };
    outln!("{} ({}, {state})", built.path.display(), built.language);
    outln!("size    {} bytes", built.size);
    outln!("digest  {}", built.digest);
    Ok(())
}
