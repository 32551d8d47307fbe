//! The `convene` executable: parses the command line and hands over to `convene::cli`.

fn main() -> std::process::ExitCode {
    convene::cli::main()
}
