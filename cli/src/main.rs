//! The `skewless` binary. All logic lives in [`skewless_cli`].

/// mimalloc rather than the system allocator: a served request allocates many small,
/// short-lived objects, and glibc's malloc and free took about a third of its time
/// (benches/README.md, "Online serving").
///
/// Built with `no_thp`: the allocator does not ask the kernel for transparent huge pages for
/// its regions. With them, the kernel zeroes (and on a fragmented machine first compacts)
/// 2 MiB for every huge page first touched; on the 2-core benchmark machine that was most of
/// the system time of a 5M-row materialization or a 1M-label retrieval, and why repeated
/// runs varied: 1M labels took 2.5-3.1 s with huge pages and 1.9-2.1 s without (0.4 s of
/// system time instead of 1.2-1.9 s), at a lower peak RSS (benches/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    skewless_cli::main()
}
