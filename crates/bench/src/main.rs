//! `sigil-bench`: measures Sigil over real gRPC against a baseline server in
//! the same run. The work is in the library; this only parses and reports.

use std::process::ExitCode;

use clap::Parser;
use sigil_bench::cli::{Cli, Command};

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(args) => {
            if let Err(error) = args.validate() {
                eprintln!("sigil-bench: {error}");
                return ExitCode::from(sigil_runtime::EXIT_BAD_CONFIG);
            }
            match sigil_bench::run(&args) {
                Ok(report) => {
                    print!("{}", report.to_table());
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("sigil-bench: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve(args) => sigil_bench::serve(&args),
    }
}
