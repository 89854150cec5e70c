//! `ksplice-apply`: apply a Ksplice update to the running kernel.
//!
//! Parses the command line ([`ksplice::cli::update::ApplyCli`]) and runs
//! [`ksplice::update::apply`]: load the update's modules, ask the kernel to
//! apply it, record it; on failure unload everything again.

use anyhow::{Result, bail};
use ksplice::cli::update::ApplyCli;
use ksplice::update::apply::{ApplyOpts, apply, apply_installed, install};
use ksplice::update::{self, Env, Ui};
use std::process::ExitCode;

fn main() -> ExitCode {
    update::tool_main(
        "ksplice-apply",
        |c: &ApplyCli| &c.common,
        Some("the update's modules are unloaded"),
        run,
    )
}

fn run(cli: &ApplyCli, ui: &Ui) -> Result<u8> {
    if cli.all_installed {
        return apply_installed(cli.partial, &cli.debug, Env::from_env()?, ui);
    }
    let Some(update) = cli.update.as_deref() else {
        bail!("no update given");
    };
    let opts = ApplyOpts {
        update,
        partial: cli.partial,
        debug: &cli.debug,
    };
    if cli.install {
        return install(&opts, Env::from_env()?, ui);
    }
    apply(&opts, Env::from_env()?, ui)
}
