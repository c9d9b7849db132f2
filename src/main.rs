//! `data-sync`: the command line over the compiled-in mapping catalogue.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    sync_cli::main(mappings::CATALOGUE)
}
