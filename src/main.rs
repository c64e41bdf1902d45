//! The `framegpt` binary: everything is in the library (`framegpt::run_cli`).

fn main() -> std::process::ExitCode {
    framegpt::run_cli()
}
