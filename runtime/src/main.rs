//! The `skewless` binary. All logic lives in the library's [`skewless_runtime::cli`].

fn main() -> std::process::ExitCode {
    skewless_runtime::cli::main()
}
