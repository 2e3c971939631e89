//! The `skewless` binary. All logic lives in [`skewless_cli`].

/// mimalloc rather than the system allocator: a served request allocates many small,
/// short-lived objects, and glibc's malloc and free took about a third of its time
/// (benches/README.md, "Online serving").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    skewless_cli::main()
}
