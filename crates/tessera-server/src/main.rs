//! The `tessera` binary: all of it lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    tessera_server::cli::main()
}
