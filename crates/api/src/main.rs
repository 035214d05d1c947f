use std::process::ExitCode;

fn main() -> ExitCode {
    writ_api::cli::main()
}
