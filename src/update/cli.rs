//! What the update tools' command lines share: the options, the exit
//! statuses and the shared `main` ([`tool_main`]), whose termination
//! signals go through [`crate::util::interrupt`]. Each tool's options and
//! `--help` texts are in the top-level `cli` module (`src/cli/`), which
//! looks down at this one.

use super::ui::Ui;
use crate::util::interrupt::{self, Interrupted};
use anyhow::{Result, anyhow};
use std::path::PathBuf;

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: an error; the kernel is as it was.
pub const EXIT_ERROR: u8 = 1;
/// Exit status: the kernel refused the operation (its abort cause is printed).
pub const EXIT_ABORTED: u8 = 2;
/// Exit status: interrupted by a signal; what was loaded is unloaded.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Parses the command line: `Err(status)` after printing help or version
/// (status 0) or a usage error (status 1, as the original tools).
fn parse_args<T: clap::Parser>() -> Result<T, u8> {
    match T::try_parse() {
        Ok(c) => Ok(c),
        Err(e) => {
            use clap::error::ErrorKind;
            let _ = e.print();
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                Err(EXIT_OK)
            } else {
                Err(EXIT_ERROR)
            }
        }
    }
}

/// The options ksplice-apply, ksplice-undo and ksplice-view share, placed
/// last in each tool's options (`#[command(flatten)]`). ksplice-view words
/// `--raw-errors`, `-v` and `-q` for itself with `mut_arg`.
#[derive(Debug, clap::Args)]
pub struct CommonOpts {
    /// Machine-readable errors on stderr: the kernel's abort code as the
    /// first line, or OTHER and a message.
    #[arg(long)]
    pub raw_errors: bool,
    /// Print the version of the update format this tool reads.
    #[arg(long)]
    pub api_version: bool,
    /// Show the commands run (repeatable).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress messages.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub quiet: u8,
}

/// `--debug` and `--debugfile` of ksplice-apply and ksplice-undo.
#[derive(Debug, Default, clap::Args)]
pub struct DebugOpts {
    /// Print the kernel's debugging output (the run-pre matching trace,
    /// the timings; on failure, why).
    #[arg(long)]
    pub debug: bool,
    /// Save the kernel's debugging output to FILE instead (implies
    /// --debug).
    #[arg(long, value_name = "FILE")]
    pub debugfile: Option<PathBuf>,
}

impl DebugOpts {
    /// Whether the kernel's debugging output is wanted.
    pub fn wanted(&self) -> bool {
        self.debug || self.debugfile.is_some()
    }
}

/// The `main` of an update tool: parses the command line (`common` gives
/// its [`CommonOpts`]), answers `--api-version`, then runs `run` and maps
/// its result to the exit status
/// (an error prints `TOOL: message` and exits 1). With `on_interrupt`, a
/// termination signal sets the interrupt flag instead of killing the tool,
/// and a run that ends with [`Interrupted`] prints "interrupted;
/// `on_interrupt`" and exits 130.
pub fn tool_main<C: clap::Parser>(
    tool: &'static str,
    common: fn(&C) -> &CommonOpts,
    on_interrupt: Option<&str>,
    run: fn(&C, &Ui) -> Result<u8>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let cli = match parse_args::<C>() {
        Ok(c) => c,
        Err(code) => return ExitCode::from(code),
    };
    let opts = common(&cli);
    if opts.api_version {
        println!("{}", crate::package::API_VERSION);
        return ExitCode::SUCCESS;
    }
    let ui = Ui {
        tool,
        verbose: i32::from(opts.verbose) - i32::from(opts.quiet),
        raw_errors: opts.raw_errors,
    };
    if on_interrupt.is_some() {
        interrupt::install_handler();
    }
    let code = match run(&cli, &ui) {
        Ok(c) => c,
        Err(e) => match on_interrupt.filter(|_| e.downcast_ref::<Interrupted>().is_some()) {
            Some(what) => {
                ui.error(&anyhow!("interrupted; {what}"));
                EXIT_INTERRUPTED
            }
            None => {
                ui.error(&e);
                EXIT_ERROR
            }
        },
    };
    ExitCode::from(code)
}
