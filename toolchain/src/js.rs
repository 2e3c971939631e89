//! JavaScript: componentize-js snapshots SpiderMonkey with the project's modules.
//!
//! The project's `.js`/`.mjs`/`.json` files are staged under the target directory beside the
//! embedded `skewless_guest.js`, so `app.js` imports the helper as `./skewless_guest.js`
//! without a copy in the project. Built with
//! `componentize-js app.js -w <wit> -n feature-transform -d random clocks http fetch-event`:
//! those features would import host randomness, clocks and HTTP that the sandbox stubs
//! anyway; `stdio` stays, so `console.log` reaches the host's log.

use std::path::{Path, PathBuf};

use super::assets::{self, JS_HELPER, WIT, WORLD};
use super::process::{self, Tools};
use super::stamp::Stamp;
use skewless_engine::error::{Error, Result};

/// How to install the tool, as the missing-tool error says it.
pub(super) const INSTALL: &str = "install it with `npm install -g \
     @bytecodealliance/componentize-js@0.23.0` (Node.js 18 or newer)";

/// Source files: staged for the build, and what the build stamp covers.
const STAGED_EXTENSIONS: [&str; 3] = ["js", "mjs", "json"];

pub(super) fn build(project: &Path, target_dir: &Path, tools: &Tools) -> Result<(PathBuf, bool)> {
    let tool = tools.require("componentize-js", INSTALL)?;
    let out = super::component_path(project, target_dir);
    let mut stamp = Stamp::new("js");
    stamp.text(&tool.to_string_lossy());
    stamp.text(&process::version(tools, &tool));
    stamp.text(WIT);
    stamp.text(JS_HELPER);
    let staged = stamp.project(project, &STAGED_EXTENSIONS)?;
    if stamp.is_fresh(&out) {
        return Ok((out, false));
    }

    let stage = target_dir.join("skewless");
    let wit = assets::write_wit(stage.join("wit"), WIT)?;
    let sources = stage.join("js");
    // Start from an empty stage, so a deleted module cannot linger there.
    if sources.exists() {
        std::fs::remove_dir_all(&sources)
            .map_err(|e| Error::from(e).with_context("directory", sources.display()))?;
    }
    for relative in &staged {
        let path = project.join(relative);
        let contents = std::fs::read(&path)
            .map_err(|e| Error::from(e).with_context("file", path.display()))?;
        assets::write_if_changed(&sources.join(relative), &contents)?;
    }
    assets::write_if_changed(&sources.join("skewless_guest.js"), JS_HELPER.as_bytes())?;
    let tmp = super::temporary(&out);
    process::run(
        tools
            .command(&tool)
            .current_dir(&sources)
            .arg("app.js")
            .arg("-w")
            .arg(&wit)
            .args([
                "-n",
                WORLD,
                "-d",
                "random",
                "clocks",
                "http",
                "fetch-event",
                "-o",
            ])
            .arg(&tmp),
        "componentize-js",
    )?;
    super::finish("componentize-js", &tmp, &out, &stamp)?;
    Ok((out, true))
}
