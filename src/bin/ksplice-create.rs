//! `ksplice-create`: build a rebootless update from a kernel tree and a patch.
//!
//! The command line is [`ksplice::cli::create`]'s; the run is
//! [`ksplice::create::run`].

use ksplice::cli::create::CreateCli;
use ksplice::create;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = CreateCli::parse_perl_style();
    if cli.api_version {
        println!("{}", ksplice::package::API_VERSION);
        return ExitCode::SUCCESS;
    }
    ksplice::util::interrupt::install_handler();
    let raw_errors = cli.raw_errors;
    let code = match create::run(&cli.options()) {
        Ok(c) => c,
        Err(e) if raw_errors => create::report_raw_error(&e),
        Err(e) => create::report_error(&e),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
