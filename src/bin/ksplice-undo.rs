//! `ksplice-undo`: reverse an applied Ksplice update.
//!
//! Asks the update's core to reverse it (`reverse` written to
//! `/sys/kernel/ksplice/<kid>/stage`), then unloads its modules (new code,
//! then the core) and removes the record ksplice-apply kept.

use anyhow::{Result, bail};
use clap::Parser;
use ksplice::package::Update;
use ksplice::update::{
    self, CommonOpts, DebugOpts, EXIT_ABORTED, EXIT_OK, Env, Kernel, Record, Stage,
    UNDO_EXIT_STATUS_HELP, Ui,
};
use std::path::Path;
use std::process::ExitCode;

/// Undo a Ksplice update applied to the running kernel.
#[derive(Debug, Parser)]
#[command(name = "ksplice-undo", version, after_help = UNDO_EXIT_STATUS_HELP)]
struct Cli {
    /// The update: its id (as ksplice-view lists it), or its tarball or
    /// unpacked directory.
    #[arg(
        value_name = "KSPLICE_ID|UPDATE",
        required_unless_present = "api_version"
    )]
    update: Option<String>,
    #[command(flatten)]
    debug: DebugOpts,
    #[command(flatten)]
    common: CommonOpts,
}

fn main() -> ExitCode {
    update::tool_main(
        "ksplice-undo",
        |c: &Cli| &c.common,
        Some("the update is still applied"),
        undo,
    )
}

/// The update id named by `arg`: `KID`, `ksplice-KID`, `ksplice_KID`, or a
/// module name `ksplice_KID_...` of a loaded update.
fn resolve_kid(k: &Kernel, arg: &str) -> Result<String> {
    let s = arg
        .strip_prefix("ksplice-")
        .or_else(|| arg.strip_prefix("ksplice_"))
        .unwrap_or(arg);
    if !k.update_present(s) {
        let cuts: Vec<usize> = s
            .char_indices()
            .filter(|&(_, c)| c == '_' || c == '-')
            .map(|(i, _)| i)
            .collect();
        for &i in cuts.iter().rev() {
            if i > 0 && k.update_present(&s[..i]) {
                return Ok(s[..i].to_string());
            }
        }
    }
    if !ksplice::package::names::is_module_name(s) {
        bail!("{arg}: not an update id, nor an update file");
    }
    Ok(s.to_string())
}

fn undo(cli: &Cli, ui: &Ui) -> Result<u8> {
    let Some(arg) = cli.update.as_deref() else {
        bail!("no update given");
    };
    let env = Env::from_env()?;
    let k = Kernel {
        env,
        ui: ui.clone(),
    };
    let path = Path::new(arg);
    let named = resolve_kid(&k, arg)
        .ok()
        .filter(|kid| k.update_present(kid));
    let (kid, file_contents) = if let Some(kid) = named {
        (kid, None)
    } else if path.exists() {
        let u = Update::open(path)?;
        (u.kid.clone(), Some(u.contents.clone()))
    } else if arg.contains('/') || arg.ends_with(".tar.gz") {
        bail!("{arg}: no such file");
    } else {
        (resolve_kid(&k, arg)?, None)
    };
    let core = format!("ksplice_{kid}");
    let state = k.env.state.clone();

    match k.stage(&kid)? {
        None => {
            // A record without an update in the kernel is stale.
            let _ = Record::remove(&state, &kid);
            bail!("Ksplice update {kid} is not present in the kernel");
        }
        Some(Stage::Applied) => {}
        Some(s) => {
            let mods = k.update_modules(&kid);
            bail!(
                "Ksplice update {kid} is not applied (stage {s}){}",
                if mods.is_empty() {
                    String::new()
                } else {
                    format!("; its modules are loaded: rmmod {}", mods.join(" "))
                }
            );
        }
    }

    ksplice::util::interrupt::check()?;
    // From here on, a signal only takes effect when the undo is complete.
    ui.progress(&format!("Reversing Ksplice update {kid}..."));
    let written = k.write_attr(&kid, "stage", "reverse");
    if k.stage(&kid).ok().flatten() != Some(Stage::Reversed) {
        let cause = k.abort_cause(&kid);
        if let Err(e) = &written
            && ui.verbose >= 1
        {
            println!("writing reverse to the stage failed: {e}");
        }
        ui.abort(
            &format!("Ksplice update {kid} was not reversed (it is still applied)"),
            &cause,
            update::explain_undo(&cause),
            &k.conflicts(&kid),
        );
        if cli.debug.wanted() {
            k.save_debug(&kid, cli.debug.debugfile.as_deref());
        }
        return Ok(EXIT_ABORTED);
    }

    // The old code is live again: unload the update's modules.
    let contents = Record::load(&state, &kid)
        .and_then(|r| r.contents)
        .or(file_contents);
    let prefix = format!("ksplice_{kid}_");
    let (mut olds, news): (Vec<String>, Vec<String>) = match &contents {
        Some(c) => (
            c.changes.iter().map(|c| c.old_module.clone()).collect(),
            c.changes.iter().map(|c| c.new_module.clone()).collect(),
        ),
        None => (
            k.modules_matching(&prefix, "_old"),
            k.modules_matching(&prefix, "_new"),
        ),
    };
    for m in k.modules_matching(&prefix, "_old") {
        if !olds.contains(&m) {
            olds.push(m);
        }
    }
    let mut failed = Vec::new();
    for m in olds.iter().rev().chain(news.iter().rev()) {
        if k.module_loaded(m)
            && let Err(e) = k.rmmod(m)
        {
            ui.warn(&format!("{e:#}"));
            failed.push(m.clone());
        }
    }
    if k.update_present(&kid)
        && let Err(e) = k.write_attr(&kid, "stage", "cleanup")
    {
        ui.warn(&format!(
            "{}/stage: cannot write cleanup: {e}",
            k.update_dir(&kid).display()
        ));
    }
    if k.module_loaded(&core)
        && let Err(e) = k.rmmod(&core)
    {
        ui.warn(&format!("{e:#}"));
        failed.push(core.clone());
    }
    if let Err(e) = Record::remove(&state, &kid) {
        ui.warn(&format!("{e:#}"));
    }
    if !failed.is_empty() {
        bail!(
            "Ksplice update {kid} is reversed, but these modules could not be unloaded: {} (unload them with rmmod)",
            failed.join(" ")
        );
    }
    ui.progress("Done!");
    Ok(EXIT_OK)
}
