//! `ksplice-apply`: apply a Ksplice update to the running kernel.
//!
//! Unpacks and checks the update, loads its core module, then for each
//! changed target its new-code and old-code modules, and asks the core to
//! apply (`apply` written to `/sys/kernel/ksplice/<kid>/stage`). On success
//! the old-code modules are unloaded and the update is recorded for
//! ksplice-view and ksplice-undo; on any failure everything loaded is
//! unloaded again, in reverse order.

use anyhow::{Context, Result, bail};
use clap::Parser;
use ksplice::package::Update;
use ksplice::update::{
    self, CommonOpts, DebugOpts, EXIT_ABORTED, EXIT_OK, EXIT_STATUS_HELP, Env, Kernel, Record,
    Stage, Ui,
};
use ksplice::util::interrupt::check as check_interrupt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Apply a Ksplice update (ksplice-ID.tar.gz, or its unpacked directory) to
/// the running kernel, without rebooting.
#[derive(Debug, Parser)]
#[command(name = "ksplice-apply", version, after_help = EXIT_STATUS_HELP)]
struct Cli {
    /// The update, as ksplice-create wrote it (or unpacked).
    #[arg(value_name = "UPDATE", required_unless_present = "api_version")]
    update: Option<PathBuf>,
    /// Apply the update to the loaded code only: changes to modules that are
    /// not loaded are skipped (without it, they make the update fail).
    #[arg(long)]
    partial: bool,
    #[command(flatten)]
    debug: DebugOpts,
    #[command(flatten)]
    common: CommonOpts,
}

fn main() -> ExitCode {
    update::tool_main(
        "ksplice-apply",
        |c: &Cli| &c.common,
        Some("the update's modules are unloaded"),
        apply,
    )
}

/// Unloads `loaded` in reverse order; failures are reported, not fatal.
fn unload(k: &Kernel, loaded: &[String]) {
    for m in loaded.iter().rev() {
        if let Err(e) = k.rmmod(m) {
            k.ui.warn(&format!("{e:#}"));
        }
    }
}

/// Loads the core (unless loaded) and each change's new then old module.
fn load(k: &Kernel, u: &Update, loaded: &mut Vec<String>) -> Result<()> {
    let core = &u.contents.core;
    if !k.module_loaded(&core.module) {
        check_interrupt()?;
        k.insmod(&u.file(&core.file))
            .with_context(|| format!("cannot load the core module {}", core.module))?;
        loaded.push(core.module.clone());
    }
    for c in &u.contents.changes {
        for (module, file, what) in [
            (&c.new_module, &c.new_file, "new"),
            (&c.old_module, &c.old_file, "old"),
        ] {
            check_interrupt()?;
            k.insmod(&u.file(file)).with_context(|| {
                format!(
                    "cannot load the {what} code module {module} for {}",
                    c.target
                )
            })?;
            loaded.push(module.clone());
        }
    }
    check_interrupt()
}

fn apply(cli: &Cli, ui: &Ui) -> Result<u8> {
    let Some(file) = cli.update.as_deref() else {
        bail!("no update given");
    };
    let env = Env::from_env()?;
    let u = Update::open(file)?;
    u.check_kernel(&env.proc_root)
        .with_context(|| file.display().to_string())?;
    check_interrupt()?;
    let kid = u.kid.clone();
    let k = Kernel {
        env,
        ui: ui.clone(),
    };
    let debug = cli.debug.wanted();
    let debug_file: Option<&Path> = cli.debug.debugfile.as_deref();

    match k.stage(&kid)? {
        None => {}
        Some(Stage::Applied) => {
            ui.progress(&format!("Ksplice update {kid} already applied."));
            return Ok(EXIT_OK);
        }
        Some(other) => {
            bail!(
                "Ksplice update {kid} is already loaded but not applied (stage {other}); unload its modules first (rmmod {})",
                k.update_modules(&kid).join(" ")
            );
        }
    }

    let missing: Vec<&str> = u
        .contents
        .changes
        .iter()
        .filter(|c| c.target != "vmlinux" && !k.module_loaded(&c.target))
        .map(|c| c.target.as_str())
        .collect();
    if !missing.is_empty() && !cli.partial {
        ui.abort(
            &format!(
                "cannot apply Ksplice update {kid}: module {} is not loaded",
                missing.join(", ")
            ),
            "target_not_loaded",
            update::explain_apply("target_not_loaded"),
            "",
        );
        return Ok(EXIT_ABORTED);
    }

    ui.progress("Loading modules...");
    let mut loaded = Vec::new();
    let prepared = load(&k, &u, &mut loaded).and_then(|()| {
        if !k.update_present(&kid) {
            bail!(
                "the update's modules are loaded but {} does not exist: the core module did not register the update",
                k.update_dir(&kid).display()
            );
        }
        if cli.partial {
            k.write_attr(&kid, "partial", "1")
                .with_context(|| format!("{}/partial: cannot write", k.update_dir(&kid).display()))?;
        }
        check_interrupt()
    });
    if let Err(e) = prepared {
        if debug && k.update_present(&kid) {
            k.save_debug(&kid, debug_file);
        }
        unload(&k, &loaded);
        return Err(e);
    }

    ui.progress(&format!("Applying Ksplice update {kid}..."));
    let written = k.write_attr(&kid, "stage", "apply");
    let stage = k.stage(&kid).ok().flatten();
    if stage == Some(Stage::Applied) {
        // The new code is live: finish even if interrupted now.
        for c in &u.contents.changes {
            if k.module_loaded(&c.old_module)
                && let Err(e) = k.rmmod(&c.old_module)
            {
                ui.warn(&format!("{e:#}"));
            }
            if cli.partial
                && c.target != "vmlinux"
                && !k.module_loaded(&c.target)
                && k.module_refcount(&c.new_module) == Some(0)
            {
                // Nothing uses the new code of a target that is not loaded.
                let _ = k.rmmod(&c.new_module);
            }
        }
        if let Err(e) = Record::save(&k.env.state, &u) {
            ui.warn(&format!(
                "{e:#} (the update is applied; ksplice-view will not show its description)"
            ));
        }
        ui.progress("Done!");
        return Ok(EXIT_OK);
    }

    let cause = k.abort_cause(&kid);
    if let Err(e) = &written
        && ui.verbose >= 1
    {
        println!("writing apply to the stage failed: {e}");
    }
    ui.abort(
        &format!("Ksplice update {kid} was not applied"),
        &cause,
        update::explain_apply(&cause),
        &k.conflicts(&kid),
    );
    if debug {
        k.save_debug(&kid, debug_file);
    }
    if let Err(e) = k.write_attr(&kid, "stage", "cleanup") {
        ui.warn(&format!(
            "{}/stage: cannot write cleanup: {e}",
            k.update_dir(&kid).display()
        ));
    }
    unload(&k, &loaded);
    Ok(EXIT_ABORTED)
}
