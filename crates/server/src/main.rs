//! The `convene` executable: parses the command line and hands over to `convene::cli`.

/// The media loop allocates and frees a 1–6 KB buffer per packet and frame inside str0m (frames
/// handed to each subscriber, SRTP output). Those sizes are past glibc's per-thread cache, where
/// every call walks the bins; mimalloc serves them from per-thread free lists. See BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    convene::cli::main()
}
