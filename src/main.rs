//! `data-sync`: the command line over the compiled-in mapping catalogue.

fn main() -> std::process::ExitCode {
    sync_cli::main(mappings::CATALOGUE)
}
