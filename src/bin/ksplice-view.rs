//! `ksplice-view`: list the Ksplice updates applied to the running kernel,
//! or describe one update (in the kernel, or on disk), as text or JSON.
//!
//! Parses the command line ([`ksplice::cli::update::ViewCli`]) and runs
//! [`ksplice::update::view`].

use anyhow::Result;
use ksplice::cli::update::ViewCli;
use ksplice::update::view::{Format, Viewed, view};
use ksplice::update::{self, Env, Ui};
use std::process::ExitCode;

fn main() -> ExitCode {
    ksplice::util::interrupt::default_sigpipe();
    update::tool_main("ksplice-view", |c: &ViewCli| &c.common, None, run)
}

fn run(cli: &ViewCli, ui: &Ui) -> Result<u8> {
    let what = match (cli.update.as_ref().or(cli.file.as_ref()), &cli.id) {
        (Some(f), _) => Viewed::File(f),
        (None, Some(id)) => Viewed::Id(id),
        (None, None) => Viewed::List,
    };
    let format = if cli.json { Format::Json } else { Format::Text };
    view(what, format, ui, Env::from_env)
}
