//! Python: componentize-py snapshots CPython with the project's modules into a component.
//!
//! `componentize-py -d <wit> -w feature-transform componentize app -p <project> -p <helpers>`
//! imports `app.py` at build time and exports its `WitWorld` class, which `skewless_guest`'s
//! decorators define. Python builds against contract 0.2.0 (every buffer as bytes), which
//! componentize-py hands over as `bytes` objects instead of one Python object per value.
//! WASI stays linked (not `--stub-wasi`): the sandbox stubs it deterministically, and `print`
//! then reaches the host's log instead of vanishing.

use std::path::{Path, PathBuf};

use super::assets::{self, PYTHON_HELPER, WIT_0_2, WORLD};
use super::process::{self, Tools};
use super::stamp::Stamp;
use skewless_engine::error::Result;

/// How to install the tool, as the missing-tool error says it.
pub(super) const INSTALL: &str = "install it with `pip install componentize-py==0.25.1`";

pub(super) fn build(project: &Path, target_dir: &Path, tools: &Tools) -> Result<(PathBuf, bool)> {
    let tool = tools.require("componentize-py", INSTALL)?;
    let out = super::component_path(project, target_dir);
    let mut stamp = Stamp::new("python");
    stamp.text(&tool.to_string_lossy());
    stamp.text(&process::version(tools, &tool));
    stamp.text(WIT_0_2);
    stamp.text(PYTHON_HELPER);
    stamp.project(project, &["py"])?;
    if stamp.is_fresh(&out) {
        return Ok((out, false));
    }

    let stage = target_dir.join("skewless");
    // Its own directory: a JavaScript build in the same target dir writes the 0.1.0 package.
    let wit = assets::write_wit(stage.join("wit-0.2.0"), WIT_0_2)?;
    let helpers = stage.join("python");
    assets::write_if_changed(&helpers.join("skewless_guest.py"), PYTHON_HELPER.as_bytes())?;
    let tmp = super::temporary(&out);
    process::run(
        tools
            .command(&tool)
            .current_dir(project)
            // Keep the project free of `__pycache__` directories.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg("-d")
            .arg(&wit)
            .args(["-w", WORLD, "componentize", "app", "-p"])
            .arg(project)
            .arg("-p")
            .arg(&helpers)
            .arg("-o")
            .arg(&tmp),
        "componentize-py",
    )?;
    super::finish("componentize-py", &tmp, &out, &stamp)?;
    Ok((out, true))
}
